// An in-process edge for the client's unit tests: the real gRPC service definition on loopback, with
// a scripted id space per sequence, call counters, and knobs to fail or delay calls.
import type {
  DispenserServer,
  IssueBatchResponse,
  LeaseResponse,
  SequenceDefinition as PbSequenceDefinition,
} from "@dispenser/proto";
import {
  DispenserService,
  ErrorReason,
  MAX_ISSUE_BATCH,
  Ordering,
  SequenceDefinition,
  SequenceType,
  statusError,
} from "@dispenser/proto";
import type { handleUnaryCall, sendUnaryData, ServerUnaryCall, StatusObject } from "@grpc/grpc-js";
import { Server, ServerCredentials, status } from "@grpc/grpc-js";

export interface FakeSequence {
  readonly def: PbSequenceDefinition;
  /** Next id handed out. */
  next: bigint;
  /** One past the last id; undefined: unbounded. */
  readonly end: bigint | undefined;
}

/** A status to answer with, thrown from a handler. */
class Refusal extends Error {
  constructor(readonly s: Partial<StatusObject>) {
    super(s.details);
  }
}

function refuse(code: status, message: string, reason: ErrorReason, field = ""): Refusal {
  return new Refusal(statusError(code, message, { reason, field }));
}

type Fault = { code: status; reason: ErrorReason; message: string } | undefined;

export class FakeEdge {
  private server = new Server();
  readonly sequences = new Map<string, FakeSequence>();
  readonly calls: Record<string, number> = {};
  /** Counts asked for by each Lease. */
  readonly leaseCounts: bigint[] = [];
  /** Every call fails with this, when set. */
  fault: Fault;
  /** Every call is answered after this many ms. */
  delayMs = 0;
  /** The ledger identity Lease answers name. */
  clusterIdentity = "a".repeat(32);
  port = 0;

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  define(name: string, fields: Partial<PbSequenceDefinition> = {}, end?: bigint): FakeSequence {
    const def = SequenceDefinition.fromPartial({
      name,
      type: SequenceType.SEQUENCE_TYPE_INCREASING,
      starting: 1n,
      step: 1n,
      datacenters: 1,
      ordering: Ordering.ORDERING_EDGE,
      limits: { maxSegmentSize: 1_000_000n },
      ...fields,
    });
    const s: FakeSequence = { def, next: def.starting ?? 0n, end };
    this.sequences.set(name, s);
    return s;
  }

  private take(s: FakeSequence, count: bigint, all: boolean): bigint | undefined {
    const left = s.end === undefined ? count : s.end - s.next;
    if (left <= 0n || (all && left < count)) return undefined;
    const n = left < count ? left : count;
    s.next += n;
    return n;
  }

  async start(): Promise<void> {
    const unary =
      <Req extends object, Res>(name: string, f: (req: Req) => Res) =>
      (call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>): void => {
        this.calls[name] = (this.calls[name] ?? 0) + 1;
        const answer = (): void => {
          const fault = this.fault;
          if (fault) return void cb(statusError(fault.code, fault.message, { reason: fault.reason }), null);
          try {
            cb(null, f(call.request));
          } catch (e) {
            cb(e instanceof Refusal ? e.s : { code: status.INTERNAL, details: String(e) }, null);
          }
        };
        if (this.delayMs > 0) setTimeout(answer, this.delayMs);
        else answer();
      };
    const seq = (name: string): FakeSequence => {
      const s = this.sequences.get(name);
      if (s === undefined) {
        throw refuse(
          status.NOT_FOUND,
          `sequence "${name}" does not exist`,
          ErrorReason.ERROR_REASON_NOT_FOUND,
        );
      }
      return s;
    };
    const exhausted = (name: string): Refusal =>
      refuse(
        status.RESOURCE_EXHAUSTED,
        `sequence "${name}" is exhausted`,
        ErrorReason.ERROR_REASON_SEQUENCE_EXHAUSTED,
      );
    const notUsed =
      <Req, Res>(): handleUnaryCall<Req, Res> =>
      (_call, cb) =>
        cb({ code: status.UNIMPLEMENTED, details: "not in the fake" }, null);

    const impl: DispenserServer = {
      issue: unary("issue", (req: { sequence: string }) => {
        const s = seq(req.sequence);
        const start = s.next;
        if (this.take(s, 1n, true) === undefined) throw exhausted(req.sequence);
        return { value: start, str: start.toString().padStart(s.def.length ?? 0, "0") };
      }),
      issueBatch: unary("issueBatch", (req: { sequence: string; count: number }): IssueBatchResponse => {
        const s = seq(req.sequence);
        if (req.count < 1 || req.count > MAX_ISSUE_BATCH) {
          throw refuse(
            status.INVALID_ARGUMENT,
            "count must be 1..10000",
            ErrorReason.ERROR_REASON_INVALID_ARGUMENT,
            "count",
          );
        }
        const start = s.next;
        if (this.take(s, BigInt(req.count), true) === undefined) throw exhausted(req.sequence);
        if (s.def.type === SequenceType.SEQUENCE_TYPE_RANDOM_FIXED_LENGTH) {
          // Not a progression: hand the ids out in reverse, as a list.
          const values = Array.from({ length: req.count }, (_, i) => start + BigInt(req.count - 1 - i));
          return { ids: { $case: "list", value: { values } } };
        }
        return { ids: { $case: "range", value: { start, count: BigInt(req.count), step: 1n } } };
      }),
      lease: unary("lease", (req: { sequence: string; count: bigint }): LeaseResponse => {
        const s = seq(req.sequence);
        this.leaseCounts.push(req.count);
        const limit = s.def.limits?.maxSegmentSize ?? 0n;
        if (req.count < 1n || req.count > limit) {
          throw refuse(
            status.INVALID_ARGUMENT,
            `count must be 1..${limit}`,
            ErrorReason.ERROR_REASON_INVALID_ARGUMENT,
            "count",
          );
        }
        if (
          s.def.type === SequenceType.SEQUENCE_TYPE_RANDOM_FIXED_LENGTH ||
          s.def.ordering === Ordering.ORDERING_GLOBAL
        ) {
          throw refuse(status.FAILED_PRECONDITION, "use IssueBatch", ErrorReason.ERROR_REASON_UNSPECIFIED);
        }
        const start = s.next;
        const n = this.take(s, req.count, false);
        if (n === undefined) throw exhausted(req.sequence);
        return {
          range: { start, count: n, step: 1n },
          dc: 0,
          fence: { term: 1n, index: 1n },
          sequenceRevision: 1n,
          clusterIdentity: this.clusterIdentity,
        };
      }),
      parse: unary("parse", (req: { sequence: string; id?: { $case: string; value: unknown } }) => {
        const s = seq(req.sequence);
        const id = req.id?.$case === "value" ? (req.id.value as bigint) : BigInt(req.id?.value as string);
        if (id < (s.def.starting ?? 0n)) {
          throw refuse(
            status.INVALID_ARGUMENT,
            `id ${id} cannot belong`,
            ErrorReason.ERROR_REASON_INVALID_ARGUMENT,
            "id",
          );
        }
        return { dc: 0, counter: id - (s.def.starting ?? 0n) };
      }),
      info: notUsed(),
      createSequence: notUsed(),
      describeSequence: unary("describeSequence", (req: { name: string }) => ({
        sequence: seq(req.name).def,
      })),
      listSequences: notUsed(),
      deleteSequence: notUsed(),
      updateSequence: notUsed(),
    };
    this.server.addService(DispenserService, impl);
    this.port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(`127.0.0.1:${this.port}`, ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
  }

  /** Stops answering at once (in-flight calls fail): the port stays free for a restart. */
  stop(): void {
    this.server.forceShutdown();
    this.server = new Server();
  }

  /** An address nothing listens on. */
  static deadAddress(): string {
    return "127.0.0.1:1";
  }
}
