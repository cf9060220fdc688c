import type { Entry, NodeId } from "@dispenser/raft";
import type { Grant } from "./allocator.js";

/** A cheap content fingerprint of an entry (FNV-1a over type and data). */
export function entryHash(e: Entry): number {
  let h = 0x811c9dc5 ^ e.type;
  for (let i = 0; i < e.data.byteLength; i++) {
    h ^= e.data[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export interface Violation {
  readonly time: number;
  readonly rule: string;
  readonly detail: string;
}

/**
 * Whole-cluster safety checks, fed by the simulation as things happen. Each method checks one
 * invariant at the moment it can first be broken; a broken one is recorded, never thrown, so the
 * run can report every rule it broke along with the seed.
 */
export class Checker {
  readonly violations: Violation[] = [];
  now = 0;

  private readonly leaders = new Map<number, NodeId>();
  /** index:term → fingerprint of data and predecessor's term (log matching, inductively). */
  private readonly logEntries = new Map<string, string>();
  /** index → "term:hash" of the entry applied there (state machine safety). */
  private readonly applied = new Map<number, string>();
  maxAppliedIndex = 0;
  /** index → allocation mark after applying it. */
  private readonly markAfter = new Map<number, number>();
  /** Per key (a space of ids): acknowledged grants sorted by start, and the highest end. */
  private readonly spaces = new Map<
    string,
    { acked: Grant[]; maxEnd: number; byRequest: Map<number, Grant> }
  >();
  acks = 0;
  reads = 0;

  fail(rule: string, detail: string): void {
    if (this.violations.length < 20) this.violations.push({ time: this.now, rule, detail });
  }

  /** Invariant: at most one leader per term. */
  leader(term: number, id: NodeId): void {
    const prev = this.leaders.get(term);
    if (prev === undefined) this.leaders.set(term, id);
    else if (prev !== id) this.fail("one-leader-per-term", `term ${term} has leaders ${prev} and ${id}`);
  }

  /** Invariant: log matching. Same (index, term) ⇒ same entry and same predecessor term. */
  persisted(node: NodeId, e: Entry, prevTerm: number | undefined): void {
    const k = `${e.index}:${e.term}`;
    const v = `${entryHash(e)}:${prevTerm ?? "?"}`;
    const prev = this.logEntries.get(k);
    if (prev === undefined) this.logEntries.set(k, v);
    else if (prev !== v) {
      // An unknown predecessor term (first entry after a snapshot) matches anything.
      const [ph, pt] = prev.split(":");
      const [vh, vt] = v.split(":");
      if (ph !== vh || (pt !== "?" && vt !== "?" && pt !== vt)) {
        this.fail("log-matching", `node ${node} entry ${k}: ${v}, seen elsewhere as ${prev}`);
      }
    }
  }

  /** Invariant: no two nodes apply different entries at the same index. */
  applyEntry(node: NodeId, e: Entry): void {
    const v = `${e.term}:${entryHash(e)}`;
    const prev = this.applied.get(e.index);
    if (prev === undefined) {
      this.applied.set(e.index, v);
      if (e.index > this.maxAppliedIndex) this.maxAppliedIndex = e.index;
    } else if (prev !== v) {
      this.fail(
        "state-machine-safety",
        `node ${node} applied ${v} at ${e.index}, another node applied ${prev}`,
      );
    }
  }

  appliedTermAt(index: number): number | undefined {
    const v = this.applied.get(index);
    return v === undefined ? undefined : Number(v.slice(0, v.indexOf(":")));
  }

  /** Invariant (the loop's): an entry is applied only once it is on this node's synced disk. */
  appliedDurable(node: NodeId, e: Entry, durable: boolean): void {
    if (!durable)
      this.fail("applied-is-durable", `node ${node} applied ${e.index}@${e.term} before syncing it`);
  }

  /** Invariant (the loop's): a membership change is answered only once it is in force. */
  membershipAnswered(node: NodeId, change: string, inForce: boolean): void {
    if (!inForce)
      this.fail("membership-answered-in-force", `node ${node} answered ${change} before it was in force`);
  }

  /** Invariant: the allocation mark after each index is the same everywhere and never decreases. */
  mark(node: NodeId, index: number, markBefore: number, markAfter: number): void {
    const prev = this.markAfter.get(index);
    if (prev !== undefined && prev !== markAfter) {
      this.fail("allocation-mark", `node ${node} mark after ${index} is ${markAfter}, elsewhere ${prev}`);
    }
    const before = this.markAfter.get(index - 1);
    if (before !== undefined && before !== markBefore) {
      this.fail("allocation-mark", `node ${node} mark before ${index} is ${markBefore}, elsewhere ${before}`);
    }
    if (markAfter < markBefore)
      this.fail("allocation-mark", `node ${node} mark went down at ${index}: ${markBefore} → ${markAfter}`);
    this.markAfter.set(index, markAfter);
  }

  private space(key: string): { acked: Grant[]; maxEnd: number; byRequest: Map<number, Grant> } {
    let sp = this.spaces.get(key);
    if (!sp) {
      sp = { acked: [], maxEnd: 0, byRequest: new Map() };
      this.spaces.set(key, sp);
    }
    return sp;
  }

  /** Highest end of any grant acknowledged in `key`'s space: a request sent now must land above it. */
  maxAckedEnd(key: string): number {
    return this.spaces.get(key)?.maxEnd ?? 0;
  }

  /**
   * Invariants: acknowledged grants never overlap; a grant requested after another was
   * acknowledged lies entirely above it (nothing acknowledged is forgotten, across crashes and
   * leader changes); a retried request is answered with the grant it got the first time.
   * `ackedEndAtRequest` is taken when the request was first sent.
   */
  ack(key: string, g: Grant, ackedEndAtRequest: number): void {
    this.acks++;
    const sp = this.space(key);
    const earlier = sp.byRequest.get(g.requestId);
    if (earlier) {
      if (earlier.start !== g.start || earlier.end !== g.end) {
        this.fail(
          "idempotent-retry",
          `request ${g.requestId} got ${g.start}..${g.end}, earlier ${earlier.start}..${earlier.end}`,
        );
      }
      return;
    }
    if (g.start < ackedEndAtRequest) {
      this.fail(
        "grant-linearizable",
        `grant ${key} ${g.start}..${g.end} (request ${g.requestId}) starts below ${ackedEndAtRequest}, acknowledged before it was requested`,
      );
    }
    const acked = sp.acked;
    let lo = 0;
    let hi = acked.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (acked[mid]!.start < g.start) lo = mid + 1;
      else hi = mid;
    }
    const before = acked[lo - 1];
    const after = acked[lo];
    if ((before && before.end > g.start) || (after && g.end > after.start)) {
      const other = before && before.end > g.start ? before : after!;
      this.fail("grants-disjoint", `grant ${key} ${g.start}..${g.end} overlaps ${other.start}..${other.end}`);
    }
    acked.splice(lo, 0, g);
    sp.byRequest.set(g.requestId, g);
    // Bounded memory: the oldest grants (and their request ids) are forgotten.
    if (acked.length > 5000) acked.splice(0, acked.length - 5000);
    if (sp.byRequest.size > 5000) sp.byRequest.delete(sp.byRequest.keys().next().value!);
    if (g.end > sp.maxEnd) sp.maxEnd = g.end;
  }

  /** Invariant: a linearizable read sees every grant acknowledged before the read began. */
  read(node: NodeId, key: string, mark: number, ackedEndAtStart: number): void {
    this.reads++;
    if (mark < ackedEndAtStart) {
      this.fail(
        "read-linearizable",
        `node ${node} read mark ${mark} of ${key}, but ${ackedEndAtStart} was acknowledged before the read`,
      );
    }
  }

  /**
   * Invariant (leader completeness): a new leader's log holds every entry applied anywhere so far.
   * `termAt` answers from the leader's log; undefined for compacted indexes (covered by its snapshot).
   */
  newLeader(
    id: NodeId,
    term: number,
    lastIndex: number,
    firstIndex: number,
    termAt: (i: number) => number | undefined,
  ): void {
    if (lastIndex < this.maxAppliedIndex) {
      this.fail(
        "leader-completeness",
        `leader ${id} of term ${term} has last index ${lastIndex} < applied ${this.maxAppliedIndex}`,
      );
      return;
    }
    const from = Math.max(firstIndex, this.maxAppliedIndex - 2000);
    for (let i = from; i <= this.maxAppliedIndex; i++) {
      const want = this.appliedTermAt(i);
      if (want === undefined) continue;
      const got = termAt(i);
      if (got !== undefined && got !== want) {
        this.fail(
          "leader-completeness",
          `leader ${id} of term ${term} has term ${got} at ${i}, committed term ${want}`,
        );
        return;
      }
    }
  }

  /**
   * Invariant: a committed entry is on the synced disk of a majority of the committing
   * configuration (one of `configs`: the leader's configuration just before and after its step).
   */
  committedDurable(
    leader: NodeId,
    index: number,
    term: number,
    configs: readonly (readonly NodeId[])[],
    durableHas: (id: NodeId) => boolean,
  ): void {
    const ok = configs.some((voters) => {
      let n = 0;
      for (const v of voters) if (durableHas(v)) n++;
      return voters.length > 0 && n >= Math.floor(voters.length / 2) + 1;
    });
    if (!ok) {
      this.fail(
        "committed-is-durable",
        `leader ${leader} committed ${index}@${term} but no majority of ${JSON.stringify(configs)} synced it`,
      );
    }
  }
}
