// The lease calls: LeaseSegment (a segment or a DC window), ReturnSegment, RaiseMark and the
// release of a restore hold. The first grant of a cluster gives it its identity.
import { randomBytes } from "node:crypto";
import type { LedgerServer } from "@dispenser/proto";
import { ErrorReason, SegmentKind } from "@dispenser/proto";
import { status } from "@grpc/grpc-js";
import { CallError } from "./common.js";
import type { LedgerService, Unary } from "./ledger-service.js";

/** A grant's return token: 128 bits from the leader's CSPRNG, proposed with the lease. */
const mintReturnToken = (): string => randomBytes(16).toString("hex");

export function leaseHandlers(
  s: LedgerService,
  unary: Unary,
): Pick<LedgerServer, "leaseSegment" | "raiseMark" | "releaseRestore" | "returnSegment"> {
  return {
    leaseSegment: unary(async (req) => {
      const kind = req.kind === SegmentKind.SEGMENT_KIND_WINDOW ? "window" : "segment";
      if (
        req.kind !== SegmentKind.SEGMENT_KIND_UNSPECIFIED &&
        req.kind !== SegmentKind.SEGMENT_KIND_SEGMENT &&
        req.kind !== SegmentKind.SEGMENT_KIND_WINDOW
      ) {
        throw new CallError(
          status.INVALID_ARGUMENT,
          `kind ${req.kind} is not a known value`,
          ErrorReason.ERROR_REASON_INVALID_ARGUMENT,
          "kind",
        );
      }
      await s.ensureIdentity();
      const out = await s.command(
        {
          type: "LeaseSegment",
          name: req.sequence,
          dc: req.dc,
          size: req.size,
          requestId: req.requestId,
          kind,
          returnToken: mintReturnToken(),
          ...(req.keyFingerprint ? { keyFingerprint: req.keyFingerprint } : {}),
        },
        (d) => (d.type === "LeaseSegment" ? d : undefined),
      );
      const g = out.grant;
      return {
        grant: {
          sequence: g.name,
          dc: g.dc,
          start: g.start,
          end: g.end,
          fence: { term: BigInt(g.fence.term), index: BigInt(g.fence.index) },
          kind: g.kind === "window" ? SegmentKind.SEGMENT_KIND_WINDOW : SegmentKind.SEGMENT_KIND_SEGMENT,
          // A replay answers the token of the first grant: the retrier is the requester.
          returnToken: g.returnToken,
        },
        sequenceRevision: s.d.app().state.get(g.name)?.modRevision ?? 0n,
        clusterIdentity: s.d.app().state.identity,
      };
    }),

    raiseMark: unary(async (req) => {
      const out = await s.command({ type: "RaiseMark", name: req.sequence, dc: req.dc, to: req.to }, (d) =>
        d.type === "RaiseMark" ? d : undefined,
      );
      return { hwm: out.hwm, raised: out.raised };
    }),

    releaseRestore: unary(async () => {
      const out = await s.command({ type: "ReleaseRestore" }, (d) =>
        d.type === "ReleaseRestore" ? d : undefined,
      );
      return { wasHeld: out.held };
    }),

    returnSegment: unary(async (req) => {
      const fence = req.fence ?? { term: 0n, index: 0n };
      const out = await s.command(
        {
          type: "ReturnSegment",
          name: req.sequence,
          dc: req.dc,
          start: req.start,
          end: req.end,
          fence: { term: Number(fence.term), index: Number(fence.index) },
          returnToken: req.returnToken,
          requestId: req.requestId,
        },
        (d) => (d.type === "ReturnSegment" ? d : undefined),
      );
      return {
        accepted: out.accepted,
        wasted: out.accepted ? 0n : req.end > req.start ? req.end - req.start : 0n,
      };
    }),
  };
}
