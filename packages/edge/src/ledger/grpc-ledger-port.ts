// LedgerPort over gRPC: LedgerClient finds the leader and retries ambiguous failures with the same
// request id, so a retried lease returns the first grant instead of a second one.
import { LedgerClient } from "@dispenser/ledger/client";
import type { SequenceChanges, SequenceSpec } from "@dispenser/domain";
import { changesToPb, fromPbSequence, specToPb } from "@dispenser/domain";
import type { SequenceDefinition } from "@dispenser/proto";
import { ErrorReason, errorDetailOf } from "@dispenser/proto";
import type { ServiceError } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import type { EdgeErrorCode } from "../errors.js";
import { EdgeError, wireInput } from "../errors.js";
import type {
  LedgerPort,
  PageRequest,
  ReturnOutcome,
  SegmentGrant,
  SequenceInfo,
  SequencePage,
} from "./ledger-port.js";

export interface GrpcLedgerPortOptions {
  /** Ledger node addresses (host:port); any of them will do. */
  readonly endpoints: readonly string[];
  /** Deadline of one attempt. Default 3,000 ms. */
  readonly attemptTimeoutMs?: number;
  /** Give up on a call after this long across attempts. Default 10,000 ms. */
  readonly totalTimeoutMs?: number;
  /** TLS to the ledger (its CA; this edge's certificate and key). Unset: plaintext. */
  readonly tls?: { readonly ca: Buffer; readonly cert: Buffer; readonly key: Buffer };
}

function codeOf(e: ServiceError): EdgeErrorCode {
  const reason = errorDetailOf(e)?.reason;
  if (reason === ErrorReason.ERROR_REASON_SEQUENCE_EXHAUSTED) return "exhausted";
  if (reason === ErrorReason.ERROR_REASON_OVERLOADED) return "overloaded";
  switch (e.code) {
    case status.INVALID_ARGUMENT:
      return "invalid-argument";
    case status.NOT_FOUND:
      return "not-found";
    case status.ALREADY_EXISTS:
      return "already-exists";
    case status.ABORTED:
      return "aborted";
    case status.UNAUTHENTICATED:
      return "unauthenticated";
    case status.PERMISSION_DENIED:
      return "permission-denied";
    case status.FAILED_PRECONDITION:
      return "failed-precondition";
    case status.RESOURCE_EXHAUSTED:
      return "overloaded";
    case status.UNAVAILABLE:
    case status.DEADLINE_EXCEEDED:
    case status.CANCELLED:
      return "unavailable";
    default:
      return "internal";
  }
}

/** A ledger failure as an EdgeError; ledger messages are kept, they are written for users. */
export function toEdgeError(e: unknown): EdgeError {
  if (e instanceof EdgeError) return e;
  const se = e as ServiceError;
  if (typeof se?.code === "number") {
    const code = codeOf(se);
    const text = code === "unavailable" ? `ledger unavailable: ${se.details}` : se.details;
    return new EdgeError(code, text, errorDetailOf(se)?.field ?? "");
  }
  return new EdgeError("internal", e instanceof Error ? e.message : String(e));
}

function info(pb: SequenceDefinition | undefined): SequenceInfo {
  if (!pb) throw new EdgeError("internal", "the ledger answered without a sequence");
  return { def: fromPbSequence(pb), revision: pb.revision, createdAtMs: Number(pb.createdAtMs) };
}

export class GrpcLedgerPort implements LedgerPort {
  private readonly client: LedgerClient;

  constructor(o: GrpcLedgerPortOptions) {
    this.client = new LedgerClient({
      endpoints: o.endpoints,
      attemptTimeoutMs: o.attemptTimeoutMs ?? 3_000,
      totalTimeoutMs: o.totalTimeoutMs ?? 10_000,
      ...(o.tls ? { tls: o.tls } : {}),
    });
  }

  private async call<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      throw toEdgeError(e);
    }
  }

  getSequence(name: string): Promise<SequenceInfo> {
    return this.call(async () => info((await this.client.call("getSequence", { name })).sequence));
  }

  lease(
    name: string,
    dc: number,
    size: bigint,
    requestId: string,
    keyFingerprint = "",
  ): Promise<SegmentGrant> {
    return this.call(async () => {
      const r = await this.client.call("leaseSegment", {
        sequence: name,
        dc,
        size,
        requestId,
        kind: 1,
        keyFingerprint,
      });
      const g = r.grant;
      if (!g?.fence) throw new EdgeError("internal", "the ledger answered a lease without a grant");
      if (g.end <= g.start || g.end - g.start > size)
        throw new EdgeError("internal", `the ledger granted [${g.start}, ${g.end}) for ${size} ids`);
      return {
        start: g.start,
        end: g.end,
        fence: g.fence,
        revision: r.sequenceRevision,
        returnToken: g.returnToken,
        clusterIdentity: r.clusterIdentity,
      };
    });
  }

  returnTail(
    name: string,
    dc: number,
    tail: { readonly start: bigint; readonly end: bigint },
    grant: Pick<SegmentGrant, "fence" | "returnToken">,
    requestId: string,
  ): Promise<ReturnOutcome> {
    return this.call(async () => {
      const r = await this.client.call("returnSegment", {
        sequence: name,
        dc,
        start: tail.start,
        end: tail.end,
        fence: grant.fence,
        returnToken: grant.returnToken,
        requestId,
      });
      return { accepted: r.accepted, wasted: r.wasted };
    });
  }

  createSequence(spec: SequenceSpec): Promise<SequenceInfo> {
    return this.call(async () => {
      const sequence = wireInput(() => specToPb(spec));
      return info((await this.client.call("createSequence", { sequence })).sequence);
    });
  }

  deleteSequence(name: string, expectedRevision: bigint): Promise<bigint> {
    return this.call(
      async () => (await this.client.call("deleteSequence", { name, expectedRevision })).revision,
    );
  }

  updateSequence(name: string, changes: SequenceChanges, expectedRevision: bigint): Promise<SequenceInfo> {
    return this.call(async () =>
      info((await this.client.call("updateSequence", changesToPb(name, changes, expectedRevision))).sequence),
    );
  }

  listSequences(page: PageRequest): Promise<SequencePage> {
    return this.call(async () => {
      const r = await this.client.call("listSequences", {
        pageSize: page.pageSize ?? 0,
        pageToken: page.pageToken ?? "",
      });
      return { sequences: r.sequences.map(info), nextPageToken: r.nextPageToken, revision: r.revision };
    });
  }

  close(): void {
    this.client.close();
  }
}
