import type { RaftOptions } from "./config.js";
import { decodeConfChange, encodeConfChange } from "./confchange.js";
import { assert } from "./errors.js";
import type { ProposeResult, ReadState, Role } from "./raft.js";
import { Raft } from "./raft.js";
import type { ConfChange, ConfState, Entry, HardState, Message, NodeId, Snapshot } from "./types.js";
import { EntryType, message, MessageType } from "./types.js";
import type { Refusal } from "./validate.js";
import { checkPeerMessage } from "./validate.js";

export interface SoftState {
  readonly lead: NodeId;
  readonly role: Role;
}

/**
 * One batch of work for the application. Process it in this order, then call `advance()`:
 * 1. Persist `hardState`, `snapshot` and `entries` (replacing any stored entries from
 *    `entries[0].index` on) and sync them to disk, as one atomic write.
 * 2. Send `messages`. Never before step 1 completes (a vote or an ack must not be seen by anyone
 *    before it is durable), unless `sendBeforePersist` is set: then they may go out at once, in
 *    parallel with the write.
 * 3. If `snapshot` is set, reset the state machine to it. Apply `committedEntries` in order.
 * 4. Serve `readStates` once the applied index reaches their index.
 * Do not call `step`, `tick` or `propose` between `ready()` and `advance()`: queue inputs instead.
 */
export interface Ready {
  readonly softState: SoftState | undefined;
  readonly hardState: HardState | undefined;
  readonly snapshot: Snapshot | undefined;
  readonly entries: readonly Entry[];
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly readStates: readonly ReadState[];
  /** Whether step 1 needs a sync (term, vote, entries or snapshot changed). */
  readonly mustSync: boolean;
  /**
   * The messages are a leader's appends and heartbeats in a term whose vote is already durable:
   * they may be sent while step 1 is in flight (Raft thesis §10.2.1). Safe because a leader
   * counts its own entries toward a commit only after `advance()`, once they are durable.
   */
  readonly sendBeforePersist: boolean;
}

export interface Status {
  readonly id: NodeId;
  readonly hardState: HardState;
  readonly softState: SoftState;
  readonly applied: number;
  readonly lastIndex: number;
  readonly confState: ConfState;
  readonly leadTransferee: NodeId;
  /** Per peer, when leader. */
  readonly progress: ReadonlyMap<NodeId, { match: number; next: number; state: string }>;
}

/** The application's handle on a Raft node: inputs, and `Ready` batches out. */
export class RawNode {
  private readonly raft: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;
  private pending: Ready | undefined;

  constructor(options: RaftOptions) {
    this.raft = new Raft(options);
    this.prevSoft = this.raft.softState();
    this.prevHard = this.raft.hardState();
  }

  private checkNotInReady(op: string): void {
    assert(this.pending === undefined, () => `${op} called between ready() and advance()`);
  }

  tick(): void {
    this.checkNotInReady("tick");
    this.raft.tick();
  }

  /**
   * Feed a message from a peer. A message that breaks a rule (a local type, no term, entries out of
   * order, a commit beyond our log …) is dropped, never asserted on: returns why, or undefined.
   */
  step(m: Message): Refusal | undefined {
    this.checkNotInReady("step");
    const bad = checkPeerMessage(m, this.raft.id);
    if (bad) return bad;
    this.raft.step(m);
    return this.raft.refused;
  }

  /** Start an election now (a pre-vote first when enabled). */
  campaign(): void {
    this.checkNotInReady("campaign");
    this.raft.step(message({ type: MessageType.Hup, from: this.raft.id }));
  }

  propose(data: Uint8Array): ProposeResult {
    this.checkNotInReady("propose");
    return this.raft.propose([{ type: EntryType.Normal, data }]);
  }

  proposeConfChange(cc: ConfChange): ProposeResult {
    this.checkNotInReady("proposeConfChange");
    return this.raft.propose([{ type: EntryType.ConfChange, data: encodeConfChange(cc) }]);
  }

  /** Ask the leader to hand leadership to `target` (forwarded when this node is a follower). */
  transferLeader(target: NodeId): void {
    this.checkNotInReady("transferLeader");
    this.raft.step(message({ type: MessageType.TransferLeader, from: target, to: this.raft.id }));
  }

  readIndex(requestId: number): boolean {
    this.checkNotInReady("readIndex");
    return this.raft.readIndex(requestId);
  }

  reportUnreachable(id: NodeId): void {
    this.checkNotInReady("reportUnreachable");
    this.raft.step(message({ type: MessageType.Unreachable, from: id }));
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    this.checkNotInReady("reportSnapshot");
    this.raft.step(message({ type: MessageType.SnapStatus, from: id, reject: !ok }));
  }

  hasReady(): boolean {
    const r = this.raft;
    const soft = r.softState();
    if (soft.lead !== this.prevSoft.lead || soft.role !== this.prevSoft.role) return true;
    const hs = r.hardState();
    if (
      hs.term !== this.prevHard.term ||
      hs.vote !== this.prevHard.vote ||
      hs.commit !== this.prevHard.commit
    )
      return true;
    if (r.log.unstable.snapshot || r.log.unstable.entries.length > 0) return true;
    if (r.msgs.length > 0 || r.readStates.length > 0) return true;
    return r.log.hasNextCommittedEntries();
  }

  ready(): Ready {
    this.checkNotInReady("ready");
    const r = this.raft;
    const soft = r.softState();
    const hs = r.hardState();
    const softChanged = soft.lead !== this.prevSoft.lead || soft.role !== this.prevSoft.role;
    const hardChanged =
      hs.term !== this.prevHard.term || hs.vote !== this.prevHard.vote || hs.commit !== this.prevHard.commit;
    const entries = r.log.unstableEntries();
    const snapshot = r.log.unstable.snapshot;
    const rd: Ready = {
      softState: softChanged ? soft : undefined,
      hardState: hardChanged ? hs : undefined,
      snapshot,
      entries,
      committedEntries: r.log.nextCommittedEntries(),
      messages: r.msgs,
      readStates: r.readStates,
      mustSync:
        entries.length > 0 ||
        snapshot !== undefined ||
        hs.term !== this.prevHard.term ||
        hs.vote !== this.prevHard.vote,
      sendBeforePersist:
        r.role === "leader" &&
        snapshot === undefined &&
        hs.term === this.prevHard.term &&
        hs.vote === this.prevHard.vote,
    };
    r.msgs = [];
    r.readStates = [];
    this.pending = rd;
    return rd;
  }

  /** The last `ready()` has been processed: what it asked to persist is durable, its entries applied. */
  advance(): void {
    const rd = this.pending;
    assert(rd !== undefined, "advance() without ready()");
    this.pending = undefined;
    const r = this.raft;
    if (rd.softState) this.prevSoft = rd.softState;
    if (rd.hardState) this.prevHard = rd.hardState;
    if (rd.snapshot) {
      r.log.stableSnapTo(rd.snapshot.meta.index);
      r.log.appliedTo(rd.snapshot.meta.index);
    }
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1]!;
      r.log.stableTo(last.index, last.term);
      r.onStable(last.index);
    }
    if (rd.committedEntries.length > 0) {
      const last = rd.committedEntries[rd.committedEntries.length - 1]!;
      r.log.appliedTo(last.index);
      if (r.role === "leader") r.reduceUncommittedBytes(rd.committedEntries);
      for (const e of rd.committedEntries) {
        if (e.type === EntryType.ConfChange) r.applyConfChange(decodeConfChange(e.data));
      }
      r.afterApply();
    }
  }

  status(): Status {
    const r = this.raft;
    const progress = new Map<NodeId, { match: number; next: number; state: string }>();
    if (r.role === "leader")
      for (const [id, pr] of r.prs) progress.set(id, { match: pr.match, next: pr.next, state: pr.state });
    return {
      id: r.id,
      hardState: r.hardState(),
      softState: r.softState(),
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      confState: r.confState(),
      leadTransferee: r.leadTransferee,
      progress,
    };
  }

  /** The current configuration: what a snapshot taken at the applied index must record. */
  confState(): ConfState {
    return this.raft.confState();
  }

  /** Entries in [lo, hi) of the log as this node sees it (for inspection and tests). */
  entries(lo: number, hi: number): Entry[] {
    return this.raft.log.slice(lo, hi, Number.POSITIVE_INFINITY);
  }

  /** The term of entry `i`, undefined if compacted or beyond the log. */
  term(i: number): number | undefined {
    return this.raft.log.term(i);
  }
}
