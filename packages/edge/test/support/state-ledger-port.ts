// A LedgerPort that applies commands to the ledger's own pure state machine in process: the same
// grant, return and catalog rules as a real ledger, without Raft or gRPC. Faults are injected per
// call to drive the issuer's waiting and error paths.
import { randomBytes } from "node:crypto";
import type { SequenceChanges, SequenceSpec } from "@dispenser/domain";
import { describeErrors, normalizeSequenceDef } from "@dispenser/domain";
import type { Command, SequenceRecord } from "@dispenser/ledger/state";
import { LedgerState } from "@dispenser/ledger/state";
import { EdgeError } from "../../src/errors.js";
import type {
  LedgerPort,
  PageRequest,
  ReturnOutcome,
  SegmentGrant,
  SequenceInfo,
  SequencePage,
} from "../../src/ledger/ledger-port.js";

const infoOf = (r: SequenceRecord): SequenceInfo => ({
  def: r.def,
  revision: r.modRevision,
  createdAtMs: r.createdAtMs,
});

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
    return Promise.resolve(infoOf(r));
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
  create(spec: SequenceSpec): SequenceInfo {
    const d = normalizeSequenceDef(spec);
    if (!d.ok) throw new EdgeError("invalid-argument", describeErrors(d.errors), d.errors[0]?.field ?? "");
    const r = this.state.apply({ type: "CreateSequence", def: d.def, createdAtMs: 0 }, this.at());
    if (!r.ok) throw new EdgeError(this.code(r.code), r.message);
    return infoOf(r.data.sequence);
  }

  /** UpdateSequence as the ledger applies it; throws on a refused change. */
  update(name: string, changes: Extract<Command, { type: "UpdateSequence" }>["changes"]): SequenceInfo {
    const r = this.state.apply({ type: "UpdateSequence", name, changes }, this.at());
    if (!r.ok) throw new EdgeError(this.code(r.code), r.message);
    return infoOf(r.data.sequence);
  }

  updateSequence(name: string, changes: SequenceChanges): Promise<SequenceInfo> {
    return new Promise((resolve) => resolve(this.update(name, changes)));
  }

  createSequence(spec: SequenceSpec): Promise<SequenceInfo> {
    return new Promise((resolve) => resolve(this.create(spec)));
  }

  deleteSequence(name: string): Promise<bigint> {
    const r = this.state.apply({ type: "DeleteSequence", name }, this.at());
    if (!r.ok) return Promise.reject(new EdgeError(this.code(r.code), r.message));
    return Promise.resolve(r.data.revision);
  }

  listSequences(page: PageRequest): Promise<SequencePage> {
    const r = this.state.list({
      ...(page.pageToken ? { after: page.pageToken } : {}),
      limit: page.pageSize || 100,
    });
    if (!r.ok) return Promise.reject(new EdgeError("invalid-argument", r.message));
    return Promise.resolve({
      sequences: r.data.sequences.map(infoOf),
      nextPageToken: r.data.next ?? "",
      revision: r.data.revision,
    });
  }

  close(): void {}
}
