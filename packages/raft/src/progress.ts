import { assert } from "./errors.js";
import type { ConfState, NodeId } from "./types.js";

/**
 * How the leader replicates to one follower:
 * - Probe: one append per heartbeat interval until the follower's match is found.
 * - Replicate: optimistic pipelining, bounded by `Inflights`.
 * - Snapshot: a snapshot is on its way; appends pause until it is acknowledged or fails.
 */
export type ProgressState = "probe" | "replicate" | "snapshot";

/** A bounded window of in-flight appends, each remembered by its last index and size. */
export class Inflights {
  private readonly indexes: number[] = [];
  private readonly sizes: number[] = [];
  private bytes = 0;
  constructor(
    readonly maxCount: number,
    readonly maxBytes: number,
  ) {}

  add(index: number, bytes: number): void {
    assert(!this.full(), "cannot add into a full inflights");
    this.indexes.push(index);
    this.sizes.push(bytes);
    this.bytes += bytes;
  }

  /** Free every in-flight append up to and including `to`. */
  freeLE(to: number): void {
    let n = 0;
    while (n < this.indexes.length && this.indexes[n]! <= to) {
      this.bytes -= this.sizes[n]!;
      n++;
    }
    if (n > 0) {
      this.indexes.splice(0, n);
      this.sizes.splice(0, n);
    }
  }

  full(): boolean {
    return this.indexes.length >= this.maxCount || (this.maxBytes > 0 && this.bytes >= this.maxBytes);
  }

  count(): number {
    return this.indexes.length;
  }

  reset(): void {
    this.indexes.length = 0;
    this.sizes.length = 0;
    this.bytes = 0;
  }
}

export class Progress {
  /** Highest index known to be durably replicated on the follower. */
  match = 0;
  /** Next index to send. */
  next: number;
  state: ProgressState = "probe";
  /** In probe state: an append was sent this heartbeat interval; wait before sending another. */
  msgAppFlowPaused = false;
  /** In snapshot state: the index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** In snapshot state: leader ticks since the snapshot was sent (to retry a lost one). */
  snapshotTicks = 0;
  /** Heard from within the current check-quorum interval. */
  recentActive = false;
  readonly inflights: Inflights;

  constructor(
    next: number,
    maxInflight: number,
    maxInflightBytes: number,
    readonly isLearner: boolean,
  ) {
    this.next = next;
    this.inflights = new Inflights(maxInflight, maxInflightBytes);
  }

  private resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.snapshotTicks = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === "snapshot") {
      const pending = this.pendingSnapshot;
      this.resetState("probe");
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState("probe");
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState("replicate");
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState("snapshot");
    this.pendingSnapshot = snapshotIndex;
  }

  /** An append of entries up to `last` (of `bytes`) was sent. */
  sentEntries(last: number, bytes: number, count: number): void {
    if (this.state === "replicate") {
      if (count > 0) {
        this.next = last + 1;
        this.inflights.add(last, bytes);
      }
      this.msgAppFlowPaused = this.inflights.full();
    } else if (this.state === "probe") {
      // A probe does not move `next`: until the follower answers, we do not know where it stands.
      this.msgAppFlowPaused = true;
    }
  }

  /** The follower acknowledged `n`. Returns false if the ack is stale. */
  maybeUpdate(n: number): boolean {
    if (n <= this.match) return false;
    this.match = n;
    this.next = Math.max(this.next, n + 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  /**
   * The follower rejected an append at `rejected`, hinting its log may match at `matchHint`.
   * Returns false if the rejection is stale (of an append already superseded).
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === "replicate") {
      // In replicate state `match` is a reliable lower bound: a rejection at or below it is stale.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // In probe state only the rejection of the last probe counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  /** Sending appends is paused: a probe is in flight, the window is full, or a snapshot is pending. */
  isPaused(): boolean {
    switch (this.state) {
      case "probe":
      case "replicate":
        return this.msgAppFlowPaused;
      case "snapshot":
        return true;
    }
  }
}

/** The commit index implied by the match indexes of `voters`: the largest index a majority holds. */
export function committedIndex(voters: readonly NodeId[], matchOf: (id: NodeId) => number): number {
  if (voters.length === 0) return 0;
  const srt = voters.map(matchOf).sort((a, b) => b - a);
  return srt[Math.floor(voters.length / 2)]!;
}

export type VoteResult = "pending" | "won" | "lost";

export function voteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.length === 0) return "won";
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === true) granted++;
    else if (v === false) rejected++;
  }
  const q = Math.floor(voters.length / 2) + 1;
  if (granted >= q) return "won";
  if (voters.length - rejected < q) return "lost";
  return "pending";
}

export function confStateEqual(a: ConfState, b: ConfState): boolean {
  const eq = (x: readonly NodeId[], y: readonly NodeId[]): boolean => {
    if (x.length !== y.length) return false;
    const sx = [...x].sort((p, q) => p - q);
    const sy = [...y].sort((p, q) => p - q);
    return sx.every((v, i) => v === sy[i]);
  };
  return eq(a.voters, b.voters) && eq(a.learners, b.learners);
}
