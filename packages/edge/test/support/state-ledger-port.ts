// A LedgerPort that applies commands to the ledger's own pure state machine in process: the same
// grant, return and catalog rules as a real ledger, without Raft or gRPC. Faults are injected per
// call to drive the issuer's waiting and error paths.
import { randomBytes } from "node:crypto";
import { fromPbSequence, toPbSequence } from "@dispenser/domain";
import type { Command } from "@dispenser/ledger/state";
import { LedgerState } from "@dispenser/ledger/state";
import { normalizeSequenceDef } from "@dispenser/domain";
import type {
  CreateSequenceRequest,
  DeleteSequenceRequest,
  DeleteSequenceResponse,
  ListSequencesRequest,
  ListSequencesResponse,
  UpdateSequenceRequest,
} from "@dispenser/proto";
import { EdgeError } from "../../src/errors.js";
import type { LedgerPort, ReturnOutcome, SegmentGrant, SequenceInfo } from "../../src/ledger/ledger-port.js";

export class StateLedgerPort implements LedgerPort {
  constructor(readonly state = new LedgerState()) {}

  private index = 0;
  leases: { name: string; dc: number; size: bigint; grant?: SegmentGrant }[] = [];
  /** Set to make the next lease calls fail (or hang until released). */
  failLeases: EdgeError | undefined;
  hold: Promise<void> | undefined;

  private at() {
    return { term: 1, index: ++this.index };
  }

  private code(c: string): EdgeError["code"] {
    return c === "exhausted" ? "exhausted" : (c as EdgeError["code"]);
  }

  getSequence(name: string): Promise<SequenceInfo> {
    const r = this.state.get(name);
    if (!r) return Promise.reject(new EdgeError("not-found", `sequence "${name}" does not exist`));
    const pb = toPbSequence(r.def, { revision: r.modRevision, createdAtMs: r.createdAtMs });
    return Promise.resolve({ def: fromPbSequence(pb), revision: pb.revision, pb });
  }

  async lease(
    name: string,
    dc: number,
    size: bigint,
    requestId: string,
    keyFingerprint?: string,
  ): Promise<SegmentGrant> {
    const rec = { name, dc, size } as (typeof this.leases)[number];
    this.leases.push(rec);
    if (this.hold) await this.hold;
    if (this.failLeases) throw this.failLeases;
    // As the ledger service does: the first lease gives the cluster its identity.
    if (this.state.identity === "")
      this.state.apply({ type: "InitCluster", identity: randomBytes(16).toString("hex") }, this.at());
    const r = this.state.apply(
      {
        type: "LeaseSegment",
        name,
        dc,
        size,
        requestId,
        kind: "segment",
        returnToken: randomBytes(16).toString("hex"),
        ...(keyFingerprint === undefined ? {} : { keyFingerprint }),
      },
      this.at(),
    );
    if (!r.ok) throw new EdgeError(this.code(r.code), r.message);
    const g = r.data.grant;
    const grant = {
      start: g.start,
      end: g.end,
      fence: { term: BigInt(g.fence.term), index: BigInt(g.fence.index) },
      revision: this.state.get(name)!.modRevision,
      returnToken: g.returnToken,
      clusterIdentity: this.state.identity,
    };
    rec.grant = grant;
    return grant;
  }

  returnTail(
    name: string,
    dc: number,
    tail: { start: bigint; end: bigint },
    grant: Pick<SegmentGrant, "fence" | "returnToken">,
    requestId: string,
  ): Promise<ReturnOutcome> {
    const { fence, returnToken } = grant;
    const r = this.state.apply(
      {
        type: "ReturnSegment",
        name,
        dc,
        start: tail.start,
        end: tail.end,
        fence: { term: Number(fence.term), index: Number(fence.index) },
        returnToken,
        requestId,
      },
      this.at(),
    );
    if (!r.ok) return Promise.reject(new EdgeError(this.code(r.code), r.message));
    return Promise.resolve({
      accepted: r.data.accepted,
      wasted: r.data.accepted ? 0n : tail.end - tail.start,
    });
  }

  /** Creates from a spec the way the ledger service would (defaults, validation). */
  create(spec: Parameters<typeof normalizeSequenceDef>[0]): SequenceInfo {
    const d = normalizeSequenceDef(spec);
    if (!d.ok) throw new Error(d.errors.map((e) => e.reason).join("; "));
    const r = this.state.apply({ type: "CreateSequence", def: d.def, createdAtMs: 0 }, this.at());
    if (!r.ok) throw new Error(r.message);
    const seq = r.data.sequence;
    const pb = toPbSequence(seq.def, { revision: seq.modRevision, createdAtMs: seq.createdAtMs });
    return { def: d.def, revision: pb.revision, pb };
  }

  /** UpdateSequence as the ledger applies it; throws on a refused change. */
  update(name: string, changes: Extract<Command, { type: "UpdateSequence" }>["changes"]): void {
    const r = this.state.apply({ type: "UpdateSequence", name, changes }, this.at());
    if (!r.ok) throw new Error(r.message);
  }

  /** UpdateSequence of the segment limit (the other fields go through update()). */
  updateSequence(req: UpdateSequenceRequest): Promise<SequenceInfo> {
    if (req.autoDisk !== undefined || req.ordering !== undefined || !req.limits)
      return Promise.reject(new EdgeError("internal", "only limits here: use update() in tests"));
    this.update(req.name, { limits: { maxSegmentSize: req.limits.maxSegmentSize } });
    return this.getSequence(req.name);
  }

  createSequence(_req: CreateSequenceRequest): Promise<SequenceInfo> {
    return Promise.reject(new EdgeError("internal", "use create() in tests"));
  }

  deleteSequence(req: DeleteSequenceRequest): Promise<DeleteSequenceResponse> {
    const r = this.state.apply({ type: "DeleteSequence", name: req.name }, this.at());
    if (!r.ok) return Promise.reject(new EdgeError(this.code(r.code), r.message));
    return Promise.resolve({ revision: r.data.revision });
  }

  listSequences(_req: ListSequencesRequest): Promise<ListSequencesResponse> {
    return Promise.reject(new EdgeError("internal", "not used in tests"));
  }

  close(): void {}
}
