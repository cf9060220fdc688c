import type { RaftLogger, RaftOptions, Rand, ResolvedRaftOptions } from "./config.js";
import { resolveOptions } from "./config.js";
import { decodeConfChange } from "./confchange.js";
import { assert } from "./errors.js";
import { RaftLog } from "./log.js";
import { committedIndex, Progress, voteResult } from "./progress.js";
import { ReadOnly } from "./readonly.js";
import type { ConfChange, ConfState, Entry, HardState, Message, NodeId, Snapshot } from "./types.js";
import { ConfChangeType, EntryType, entryBytes, isLocal, message, MessageType, NONE } from "./types.js";
import type { Refusal } from "./validate.js";
import { refusal } from "./validate.js";

export type Role = "follower" | "pre-candidate" | "candidate" | "leader";

/** Context value of a Vote message sent because the leader asked us to take over. */
export const CAMPAIGN_TRANSFER = 1;

/** Why a proposal was not accepted. Expected outcomes, not bugs. */
export type ProposeError =
  | { code: "not-leader"; leader: NodeId }
  | { code: "transferring"; leader: NodeId }
  | { code: "removed"; leader: NodeId }
  | { code: "conf-change-pending"; leader: NodeId }
  | { code: "invalid-conf-change"; leader: NodeId; reason: string }
  | { code: "too-many-uncommitted"; leader: NodeId };

export type ProposeResult = { ok: true; index: number; term: number } | ({ ok: false } & ProposeError);

export interface ReadState {
  /** Serve the read once the applied index reaches this. */
  readonly index: number;
  /** The caller's request id, as passed to `readIndex`. */
  readonly requestId: number;
}

/**
 * The Raft protocol as a deterministic state machine. Inputs: `step`, `tick`, `propose`. Outputs
 * accumulate in `msgs`, `readStates` and the log's unstable part, and are collected by `RawNode`.
 */
export class Raft {
  readonly id: NodeId;
  readonly log: RaftLog;
  readonly opts: ResolvedRaftOptions;
  private readonly logger: RaftLogger;
  private readonly rand: Rand;

  term = 0;
  vote: NodeId = NONE;
  role: Role = "follower";
  lead: NodeId = NONE;
  /** Why the last stepped message was dropped, when a check against our state refused it. */
  refused: Refusal | undefined;

  voters = new Set<NodeId>();
  learners = new Set<NodeId>();
  readonly prs = new Map<NodeId, Progress>();

  private votes = new Map<NodeId, boolean>();
  msgs: Message[] = [];
  readStates: ReadState[] = [];

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;

  leadTransferee: NodeId = NONE;
  /** A TimeoutNow arrived while conf changes were unapplied: campaign once they are. */
  private transferCampaignPending = false;
  /** No new conf change may be proposed until the log is applied past this index. */
  pendingConfIndex = 0;
  /** Bytes of entries proposed by this leader and not yet committed. */
  private uncommittedBytes = 0;
  private readonly readOnly: ReadOnly;
  /** ReadIndex requests that arrived before this leader committed an entry of its term. */
  private pendingReadIndex: Message[] = [];

  constructor(options: RaftOptions) {
    this.opts = resolveOptions(options);
    this.id = this.opts.id;
    this.logger = this.opts.logger;
    this.rand = this.opts.rand;
    this.readOnly = new ReadOnly(this.opts.maxPendingReads);
    const storage = this.opts.storage;
    this.log = new RaftLog(storage, this.opts.maxApplyBytes);
    const { hardState, confState } = storage.initialState();
    this.restoreConf(confState);
    if (hardState.term !== 0 || hardState.vote !== NONE || hardState.commit !== 0) this.loadState(hardState);
    const applied = this.opts.appliedIndex;
    if (applied !== undefined && applied > 0) this.log.appliedTo(applied);
    // Restart invariant (applied ≤ commit ≤ last): the durable state was written as one batch.
    assert(
      this.log.applied <= this.log.committed && this.log.committed <= this.log.lastIndex(),
      () =>
        `inconsistent restart state: applied ${this.log.applied}, commit ${this.log.committed}, last ${this.log.lastIndex()}`,
    );
    this.becomeFollower(this.term, NONE);
  }

  // ---------------------------------------------------------------- state transitions

  private loadState(hs: HardState): void {
    assert(
      hs.commit >= this.log.committed && hs.commit <= this.log.lastIndex(),
      () =>
        `${this.id} state.commit ${hs.commit} is out of range [${this.log.committed}, ${this.log.lastIndex()}]`,
    );
    this.log.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  /** Whether this node may campaign: it is a voter of its current configuration. */
  promotable(): boolean {
    return this.voters.has(this.id);
  }

  private reset(term: number): void {
    if (this.term !== term) {
      // The vote belongs to a term: it changes only with the term.
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.transferCampaignPending = false;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.votes = new Map();
    const last = this.log.lastIndex();
    for (const [id, pr] of this.prs) {
      const fresh = new Progress(
        last + 1,
        this.opts.maxInflightMsgs,
        this.opts.maxInflightBytes,
        pr.isLearner,
      );
      if (id === this.id) fresh.match = this.stableLastIndex();
      this.prs.set(id, fresh);
    }
    this.pendingConfIndex = 0;
    this.uncommittedBytes = 0;
    this.readOnly.clear();
    this.pendingReadIndex = [];
  }

  /** The last index of our log that is known to be durable (persisted by a previous Ready). */
  private stableLastIndex(): number {
    if (this.log.unstable.snapshot) return 0;
    return Math.min(this.log.unstable.offset - 1, this.log.lastIndex());
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.role = "follower";
    this.lead = lead;
    this.logger.info("became follower", { id: this.id, term, lead });
  }

  private becomePreCandidate(): void {
    assert(this.role !== "leader", "invalid transition [leader -> pre-candidate]");
    // Neither the term nor the vote changes: a pre-vote round must not disturb anyone.
    this.votes = new Map();
    this.role = "pre-candidate";
    this.lead = NONE;
    this.logger.info("became pre-candidate", { id: this.id, term: this.term });
  }

  private becomeCandidate(): void {
    assert(this.role !== "leader", "invalid transition [leader -> candidate]");
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = "candidate";
    this.logger.info("became candidate", { id: this.id, term: this.term });
  }

  private becomeLeader(): void {
    assert(this.role !== "follower", "invalid transition [follower -> leader]");
    this.reset(this.term);
    this.lead = this.id;
    this.role = "leader";
    this.prs.get(this.id)?.becomeReplicate();
    // An empty entry of our own term: committing it commits everything before it (§5.4.2), and
    // until then no conf change may be proposed (a conf change must not cross terms unanchored).
    this.appendEntries([{ term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array() }]);
    this.pendingConfIndex = this.log.lastIndex();
    this.uncommittedBytes = 0; // The empty entry does not count against the proposal limit.
    this.logger.info("became leader", { id: this.id, term: this.term });
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.opts.electionTicks + this.rand.intn(this.opts.electionTicks);
  }

  // ---------------------------------------------------------------- ticks

  tick(): void {
    if (this.role === "leader") this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.step(message({ type: MessageType.Hup, from: this.id }));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    for (const [id, pr] of this.prs) {
      if (id !== this.id && pr.state === "snapshot" && ++pr.snapshotTicks >= 2 * this.opts.electionTicks) {
        // No word on the snapshot for two election timeouts: assume it was lost, probe again.
        pr.becomeProbe();
      }
    }
    if (this.electionElapsed >= this.opts.electionTicks) {
      this.electionElapsed = 0;
      if (this.opts.checkQuorum) this.step(message({ type: MessageType.CheckQuorum, from: this.id }));
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.role === "leader" && this.leadTransferee !== NONE) this.abortLeaderTransfer();
      // A removed leader tries again.
      if (this.role === "leader" && !this.promotable()) this.handOverLeadership();
    }
    if (this.role !== "leader") return;
    if (this.heartbeatElapsed >= this.opts.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.step(message({ type: MessageType.Beat, from: this.id }));
    }
  }

  // ---------------------------------------------------------------- sending

  private send(m: Message): void {
    this.msgs.push(m);
  }

  /** Send an append (or a snapshot) to `to` if its flow control allows. Returns whether one was sent. */
  private sendAppend(to: NodeId, sendIfEmpty = true): boolean {
    const pr = this.prs.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    // With a full window, send an empty append: if every append in flight was lost, its ack or
    // rejection is what frees the window, so replication cannot stall.
    const throttled = pr.state === "replicate" && pr.inflights.full();
    const ents =
      prevTerm === undefined
        ? undefined
        : throttled
          ? []
          : this.log.entriesFrom(pr.next, this.opts.maxMsgBytes);
    if (prevTerm === undefined || ents === undefined) return this.sendSnapshot(to, pr);
    if (ents.length === 0 && !sendIfEmpty) return false;
    let bytes = 0;
    for (const e of ents) bytes += entryBytes(e);
    this.send(
      message({
        type: MessageType.App,
        to,
        from: this.id,
        term: this.term,
        index: prevIndex,
        logTerm: prevTerm,
        entries: ents,
        commit: this.log.committed,
      }),
    );
    pr.sentEntries(prevIndex + ents.length, bytes, ents.length);
    return true;
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    let snapshot: Snapshot;
    try {
      snapshot = this.log.snapshot();
    } catch {
      return false; // Temporarily unavailable: retried on a later heartbeat response.
    }
    assert(snapshot.meta.index > 0, "need non-empty snapshot");
    pr.becomeSnapshot(snapshot.meta.index);
    this.send(message({ type: MessageType.Snap, to, from: this.id, term: this.term, snapshot }));
    return true;
  }

  private bcastAppend(): void {
    for (const id of this.prs.keys()) if (id !== this.id) this.sendAppend(id);
  }

  private bcastHeartbeat(round: number): void {
    for (const [id, pr] of this.prs) {
      if (id === this.id) continue;
      // Never tell a follower a commit index beyond what it is known to hold.
      const commit = Math.min(pr.match, this.log.committed);
      this.send(
        message({
          type: MessageType.Heartbeat,
          to: id,
          from: this.id,
          term: this.term,
          commit,
          context: round,
        }),
      );
    }
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send(message({ type: MessageType.TimeoutNow, to, from: this.id, term: this.term }));
  }

  // ---------------------------------------------------------------- log

  /** Append entries as leader, stamping term and index. */
  private appendEntries(es: readonly Entry[]): { index: number; term: number } {
    let li = this.log.lastIndex();
    const stamped = es.map((e) => ({ ...e, term: this.term, index: ++li }));
    this.log.append(stamped);
    return { index: li, term: this.term };
  }

  /** The leader's own entries up to `index` are durable: count them toward the quorum. */
  onStable(index: number): void {
    if (this.role !== "leader") return;
    const pr = this.prs.get(this.id);
    if (pr && pr.maybeUpdate(Math.min(index, this.stableLastIndex())) && this.maybeCommit())
      this.onCommitAdvanced();
  }

  private maybeCommit(): boolean {
    const mci = committedIndex([...this.voters], (id) => this.prs.get(id)?.match ?? 0);
    return this.log.maybeCommit(mci, this.term);
  }

  private onCommitAdvanced(): void {
    this.bcastAppend();
    if (this.committedEntryInCurrentTerm()) this.releasePendingReadIndex();
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  reduceUncommittedBytes(ents: readonly Entry[]): void {
    if (this.uncommittedBytes === 0) return;
    let s = 0;
    for (const e of ents) s += e.data.byteLength;
    this.uncommittedBytes = Math.max(0, this.uncommittedBytes - s);
  }

  // ---------------------------------------------------------------- configuration

  private restoreConf(cs: ConfState): void {
    this.voters = new Set(cs.voters);
    this.learners = new Set(cs.learners);
    this.prs.clear();
    const next = this.log.lastIndex() + 1;
    for (const id of cs.voters) this.prs.set(id, this.newProgress(id, next, false));
    for (const id of cs.learners) this.prs.set(id, this.newProgress(id, next, true));
  }

  private newProgress(id: NodeId, next: number, isLearner: boolean): Progress {
    const pr = new Progress(next, this.opts.maxInflightMsgs, this.opts.maxInflightBytes, isLearner);
    if (id === this.id) pr.match = this.stableLastIndex();
    // Assume a new peer is active so check-quorum does not fire before it can answer.
    pr.recentActive = true;
    return pr;
  }

  confState(): ConfState {
    return {
      voters: [...this.voters].sort((a, b) => a - b),
      learners: [...this.learners].sort((a, b) => a - b),
    };
  }

  /** Why `cc` cannot apply to the current configuration, or undefined when it is valid. */
  confChangeProblem(cc: ConfChange): string | undefined {
    if (!Number.isSafeInteger(cc.nodeId) || cc.nodeId <= 0) return `invalid node id ${cc.nodeId}`;
    switch (cc.type) {
      case ConfChangeType.AddVoter:
        if (this.voters.has(cc.nodeId)) return `node ${cc.nodeId} is already a voter`;
        return undefined;
      case ConfChangeType.PromoteLearner:
        if (!this.learners.has(cc.nodeId)) return `node ${cc.nodeId} is not a learner`;
        return undefined;
      case ConfChangeType.AddLearner:
        if (this.voters.has(cc.nodeId)) return `node ${cc.nodeId} is a voter; remove it first`;
        if (this.learners.has(cc.nodeId)) return `node ${cc.nodeId} is already a learner`;
        return undefined;
      case ConfChangeType.Remove:
        if (!this.voters.has(cc.nodeId) && !this.learners.has(cc.nodeId))
          return `node ${cc.nodeId} is not a member`;
        if (this.voters.has(cc.nodeId) && this.voters.size === 1) return "cannot remove the last voter";
        // From two voters to one: the remaining voter cannot elect itself until it learns the
        // removal is committed, and only a leader can tell it; if the removed node has a longer
        // log (or is gone), the group is wedged for good. Add a voter first.
        if (this.voters.has(cc.nodeId) && this.voters.size === 2)
          return "cannot remove a voter from a two-voter configuration; add a voter first";
        return undefined;
    }
  }

  /**
   * Apply a committed conf change. Called in log order for every applied conf change entry, on
   * every node, so an invalid change is skipped identically everywhere.
   */
  applyConfChange(cc: ConfChange): ConfState {
    if (this.confChangeProblem(cc) !== undefined) return this.confState();
    const next = this.log.lastIndex() + 1;
    switch (cc.type) {
      case ConfChangeType.AddVoter:
      case ConfChangeType.PromoteLearner: {
        const old = this.prs.get(cc.nodeId);
        this.learners.delete(cc.nodeId);
        this.voters.add(cc.nodeId);
        const pr = this.newProgress(cc.nodeId, old?.next ?? next, false);
        if (old) {
          pr.match = old.match;
          pr.recentActive = old.recentActive;
        }
        this.prs.set(cc.nodeId, pr);
        break;
      }
      case ConfChangeType.AddLearner:
        this.learners.add(cc.nodeId);
        this.prs.set(cc.nodeId, this.newProgress(cc.nodeId, next, true));
        break;
      case ConfChangeType.Remove:
        this.voters.delete(cc.nodeId);
        this.learners.delete(cc.nodeId);
        this.prs.delete(cc.nodeId);
        break;
    }
    this.logger.info("applied conf change", { id: this.id, change: cc, conf: this.confState() });
    if (this.role === "leader") {
      if (!this.promotable()) {
        // Removed: we no longer count toward quorums or accept proposals, but we keep
        // replicating until a remaining voter takes over. Stepping down at once could strand
        // the group: a voter that has not learned the removal is committed still needs our
        // vote, and our longer log would refuse it.
        this.bcastAppend();
        this.handOverLeadership();
      } else {
        if (this.leadTransferee !== NONE && !this.voters.has(this.leadTransferee)) this.abortLeaderTransfer();
        // A smaller quorum may commit more now.
        if (this.maybeCommit()) this.onCommitAdvanced();
        else this.bcastAppend();
      }
    }
    return this.confState();
  }

  /** Called after the application applied a batch of entries. */
  afterApply(): void {
    if (this.transferCampaignPending && this.role === "follower" && !this.hasUnappliedConfChanges()) {
      this.transferCampaignPending = false;
      this.hup(true);
    }
  }

  private hasUnappliedConfChanges(): boolean {
    if (this.log.applied >= this.log.committed) return false;
    const lo = Math.max(this.log.applied + 1, this.log.firstIndex());
    const ents = this.log.slice(lo, this.log.committed + 1, Number.POSITIVE_INFINITY);
    return ents.some((e) => e.type === EntryType.ConfChange);
  }

  // ---------------------------------------------------------------- public inputs

  propose(entries: readonly { type: EntryType; data: Uint8Array }[]): ProposeResult {
    if (this.role !== "leader") return { ok: false, code: "not-leader", leader: this.lead };
    if (!this.prs.has(this.id)) return { ok: false, code: "removed", leader: NONE };
    if (this.leadTransferee !== NONE) return { ok: false, code: "transferring", leader: this.leadTransferee };
    let bytes = 0;
    for (const e of entries) {
      bytes += e.data.byteLength;
      if (e.type === EntryType.ConfChange) {
        if (this.pendingConfIndex > this.log.applied)
          return { ok: false, code: "conf-change-pending", leader: this.id };
        const problem = this.confChangeProblem(decodeConfChange(e.data));
        if (problem !== undefined)
          return { ok: false, code: "invalid-conf-change", leader: this.id, reason: problem };
      }
    }
    if (
      this.opts.maxUncommittedBytes > 0 &&
      this.uncommittedBytes > 0 &&
      this.uncommittedBytes + bytes > this.opts.maxUncommittedBytes
    ) {
      return { ok: false, code: "too-many-uncommitted", leader: this.id };
    }
    const r = this.appendEntries(entries.map((e) => ({ term: 0, index: 0, ...e })));
    this.uncommittedBytes += bytes;
    if (entries.some((e) => e.type === EntryType.ConfChange)) this.pendingConfIndex = r.index;
    this.bcastAppend();
    return { ok: true, index: r.index, term: r.term };
  }

  /**
   * Ask for a linearizable read point. The result arrives as a `ReadState` carrying `requestId`.
   * Returns false when the request cannot be served now (no known leader, or too many waiting).
   */
  readIndex(requestId: number): boolean {
    if (this.role === "leader")
      return this.leaderReadIndex(
        message({ type: MessageType.ReadIndex, from: this.id, to: this.id, context: requestId }),
      );
    if (this.lead === NONE) return false;
    this.send(message({ type: MessageType.ReadIndex, to: this.lead, from: this.id, context: requestId }));
    return true;
  }

  private leaderReadIndex(m: Message): boolean {
    // A new leader does not know the commit index until it commits an entry of its own term:
    // an earlier leader may have committed (and acknowledged) more. True of a lone voter too.
    if (!this.committedEntryInCurrentTerm()) {
      if (this.pendingReadIndex.length >= this.opts.maxPendingReads) return false;
      this.pendingReadIndex.push(m);
      return true;
    }
    if (this.voters.size === 1 && this.voters.has(this.id)) {
      this.respondRead(m, this.log.committed);
      return true;
    }
    const round = this.readOnly.add(this.log.committed, m);
    if (round === undefined) return false;
    this.readOnly.ack(this.id, round);
    this.bcastHeartbeat(round);
    return true;
  }

  private releasePendingReadIndex(): void {
    const pending = this.pendingReadIndex;
    this.pendingReadIndex = [];
    for (const m of pending) this.leaderReadIndex(m);
  }

  private respondRead(m: Message, index: number): void {
    if (m.from === this.id || m.from === NONE) {
      this.readStates.push({ index, requestId: m.context });
    } else {
      this.send(
        message({
          type: MessageType.ReadIndexResp,
          to: m.from,
          from: this.id,
          term: this.term,
          index,
          context: m.context,
        }),
      );
    }
  }

  // ---------------------------------------------------------------- step

  step(m: Message): void {
    if (!isLocal(m.type)) {
      this.refused = this.refusalOf(m);
      if (this.refused) return;
    }
    if (m.term === 0) {
      assert(
        isLocal(m.type) ||
          m.type === MessageType.ReadIndex ||
          m.type === MessageType.TransferLeader ||
          m.type === MessageType.Prop,
        () => `message ${m.type} from ${m.from} without a term`,
      );
    } else if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        const force = m.context === CAMPAIGN_TRANSFER;
        const inLease =
          this.opts.checkQuorum && this.lead !== NONE && this.electionElapsed < this.opts.electionTicks;
        // We heard from a live leader recently: do not let a disruptive node depose it.
        if (!force && inLease) return;
      }
      if (m.type === MessageType.PreVote) {
        // A pre-vote does not change our term.
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // Granted pre-votes carry the term we would campaign at; we bump it only if we win.
      } else if (
        m.type === MessageType.App ||
        m.type === MessageType.Heartbeat ||
        m.type === MessageType.Snap
      ) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if (
        (this.opts.checkQuorum || this.opts.preVote) &&
        (m.type === MessageType.Heartbeat || m.type === MessageType.App)
      ) {
        // A leader stranded in an old term (or one we ignored because of the lease) learns our
        // term and steps down, instead of the two of us ignoring each other forever.
        this.send(message({ type: MessageType.AppResp, to: m.from, from: this.id, term: this.term }));
      } else if (m.type === MessageType.PreVote) {
        // Tell a pre-candidate behind us our term, so it catches up instead of being stranded.
        this.send(
          message({
            type: MessageType.PreVoteResp,
            to: m.from,
            from: this.id,
            term: this.term,
            reject: true,
          }),
        );
      }
      return;
    }

    switch (m.type) {
      case MessageType.Hup:
        this.hup(false);
        return;
      case MessageType.Vote:
      case MessageType.PreVote:
        this.handleVoteRequest(m);
        return;
      default:
        break;
    }

    switch (this.role) {
      case "leader":
        this.stepLeader(m);
        return;
      case "candidate":
      case "pre-candidate":
        this.stepCandidate(m);
        return;
      case "follower":
        this.stepFollower(m);
        return;
    }
  }

  private hup(transfer: boolean): void {
    if (this.role === "leader") return;
    if (!this.promotable()) {
      this.logger.warn("not campaigning: not a voter", { id: this.id });
      return;
    }
    if (this.hasUnappliedConfChanges()) {
      // Our idea of the configuration is about to change; campaigning now could count the wrong
      // quorum. A transfer request is kept and honoured once the changes are applied: the
      // leader (often one that removed itself) is waiting on us.
      this.logger.warn("not campaigning: committed conf changes not yet applied", { id: this.id });
      if (transfer) this.transferCampaignPending = true;
      return;
    }
    if (this.opts.preVote && !transfer) this.campaign("pre");
    else this.campaign(transfer ? "transfer" : "vote");
  }

  private campaign(kind: "pre" | "vote" | "transfer"): void {
    let term: number;
    let type: MessageType;
    if (kind === "pre") {
      this.becomePreCandidate();
      term = this.term + 1;
      type = MessageType.PreVote;
    } else {
      this.becomeCandidate();
      term = this.term;
      type = MessageType.Vote;
    }
    this.votes.set(this.id, true);
    if (voteResult([...this.voters], this.votes) === "won") {
      // A single-voter group wins at once.
      if (kind === "pre") this.campaign("vote");
      else this.becomeLeader();
      return;
    }
    for (const id of this.voters) {
      if (id === this.id) continue;
      this.send(
        message({
          type,
          to: id,
          from: this.id,
          term,
          index: this.log.lastIndex(),
          logTerm: this.log.lastTerm(),
          context: kind === "transfer" ? CAMPAIGN_TRANSFER : 0,
        }),
      );
    }
  }

  private handleVoteRequest(m: Message): void {
    const isPre = m.type === MessageType.PreVote;
    const canVote =
      this.vote === m.from ||
      (this.vote === NONE && this.lead === NONE) ||
      // A pre-vote for a future term may be granted even if we already voted in this one.
      (isPre && m.term > this.term);
    const respType = isPre ? MessageType.PreVoteResp : MessageType.VoteResp;
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      // Reply with the request's term: a pre-vote grant at our own (lower) term would be dropped
      // by the pre-candidate as stale.
      this.send(message({ type: respType, to: m.from, from: this.id, term: m.term }));
      if (!isPre) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send(message({ type: respType, to: m.from, from: this.id, term: this.term, reject: true }));
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case MessageType.Beat:
        this.bcastHeartbeat(0);
        return;
      case MessageType.CheckQuorum:
        if (!this.quorumActive()) {
          this.logger.warn("stepped down: no quorum heard within an election timeout", {
            id: this.id,
            term: this.term,
          });
          this.becomeFollower(this.term, NONE);
        }
        for (const [id, pr] of this.prs) if (id !== this.id) pr.recentActive = false;
        return;
      case MessageType.ReadIndex:
        if (!this.leaderReadIndex(m))
          this.logger.warn("dropped read index request", { id: this.id, from: m.from });
        return;
      case MessageType.TransferLeader:
        this.handleTransferLeader(m.from);
        return;
      default:
        break;
    }

    const pr = this.prs.get(m.from);
    if (!pr) return;
    switch (m.type) {
      case MessageType.AppResp: {
        pr.recentActive = true;
        if (m.reject) {
          let hint = m.rejectHint;
          if (m.logTerm > 0) hint = this.log.findConflictByTerm(m.rejectHint, m.logTerm).index;
          if (pr.maybeDecrTo(m.index, hint)) {
            if (pr.state === "replicate") pr.becomeProbe();
            this.sendAppend(m.from);
          }
          return;
        }
        // A follower paused when the commit index last advanced missed that broadcast.
        const wasPaused = pr.isPaused();
        if (pr.maybeUpdate(m.index) || (pr.match === m.index && pr.state === "probe")) {
          if (pr.state === "probe") pr.becomeReplicate();
          else if (pr.state === "snapshot" && pr.match >= pr.pendingSnapshot) {
            pr.becomeProbe();
            pr.becomeReplicate();
          } else if (pr.state === "replicate") pr.inflights.freeLE(m.index);
          if (this.maybeCommit()) this.onCommitAdvanced();
          else if (m.from !== this.id) {
            let sent = false;
            while (this.sendAppend(m.from, false)) sent = true;
            // Nothing new to send, but it may not know the commit index yet: tell it now rather
            // than at the next heartbeat (fix found by paper.test.ts, "a new leader appends ...").
            if (!sent && wasPaused) this.sendAppend(m.from);
          }
          if (m.from === this.leadTransferee && pr.match === this.log.lastIndex())
            this.sendTimeoutNow(m.from);
        }
        return;
      }
      case MessageType.HeartbeatResp:
        pr.recentActive = true;
        pr.msgAppFlowPaused = false;
        if (pr.match < this.log.lastIndex() || pr.state === "probe") this.sendAppend(m.from);
        if (m.context > 0) {
          for (const req of this.readOnly.ackAndRelease(m.from, m.context, [...this.voters]))
            this.respondRead(req.message, req.index);
        }
        return;
      case MessageType.SnapStatus:
        if (pr.state !== "snapshot") return;
        if (m.reject) pr.pendingSnapshot = 0;
        // Either way, probe next; wait for a heartbeat response before sending more.
        pr.becomeProbe();
        pr.msgAppFlowPaused = true;
        return;
      case MessageType.Unreachable:
        if (pr.state === "replicate") pr.becomeProbe();
        return;
      default:
        return;
    }
  }

  private handleTransferLeader(target: NodeId): void {
    const pr = this.prs.get(target);
    if (!pr || pr.isLearner || !this.voters.has(target)) return;
    if (this.leadTransferee !== NONE) {
      if (this.leadTransferee === target) return; // Already under way.
      this.abortLeaderTransfer();
    }
    if (target === this.id) return;
    // The transfer must finish within one election timeout.
    this.electionElapsed = 0;
    this.leadTransferee = target;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(target);
    else this.sendAppend(target);
  }

  /** A removed leader hands over to the most caught-up remaining voter. */
  private handOverLeadership(): void {
    let best: NodeId = NONE;
    let bestMatch = -1;
    for (const id of this.voters) {
      const m = this.prs.get(id)?.match ?? 0;
      if (m > bestMatch) {
        best = id;
        bestMatch = m;
      }
    }
    if (best !== NONE) this.handleTransferLeader(best);
  }

  private abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  private quorumActive(): boolean {
    // Learners do not count: only voters can keep a leader in office.
    const votes = new Map<NodeId, boolean>();
    for (const id of this.voters) {
      const pr = this.prs.get(id);
      if (id === this.id || pr?.recentActive) votes.set(id, true);
    }
    return voteResult([...this.voters], votes) === "won";
  }

  private stepCandidate(m: Message): void {
    const myRespType = this.role === "pre-candidate" ? MessageType.PreVoteResp : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.App:
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return;
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case MessageType.VoteResp:
      case MessageType.PreVoteResp: {
        if (m.type !== myRespType) return;
        this.votes.set(m.from, !m.reject);
        const res = voteResult([...this.voters], this.votes);
        if (res === "won") {
          if (this.role === "pre-candidate") this.campaign("vote");
          else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (res === "lost") {
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      default:
        return;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.App:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case MessageType.Heartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case MessageType.TransferLeader:
        if (this.lead !== NONE) this.send({ ...m, to: this.lead });
        return;
      case MessageType.TimeoutNow:
        // The leader asked us to take over: campaign at once, skipping pre-vote.
        this.hup(true);
        return;
      case MessageType.ReadIndex:
        if (this.lead !== NONE) this.send({ ...m, to: this.lead });
        return;
      case MessageType.ReadIndexResp:
        this.readStates.push({ index: m.index, requestId: m.context });
        return;
      default:
        return;
    }
  }

  private handleAppendEntries(m: Message): void {
    if (m.index < this.log.committed) {
      this.send(
        message({
          type: MessageType.AppResp,
          to: m.from,
          from: this.id,
          term: this.term,
          index: this.log.committed,
        }),
      );
      return;
    }
    const last = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (last !== undefined) {
      this.send(
        message({ type: MessageType.AppResp, to: m.from, from: this.id, term: this.term, index: last }),
      );
      return;
    }
    // Hint where our logs may agree: the last index at or before the probe whose term is not
    // newer than the leader's entry there, so a whole conflicting term is skipped per round trip.
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send(
      message({
        type: MessageType.AppResp,
        to: m.from,
        from: this.id,
        term: this.term,
        index: m.index,
        reject: true,
        rejectHint: hint.index,
        logTerm: hint.term,
      }),
    );
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(m.commit);
    this.send(
      message({
        type: MessageType.HeartbeatResp,
        to: m.from,
        from: this.id,
        term: this.term,
        context: m.context,
      }),
    );
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot;
    assert(s !== undefined, "snapshot message without a snapshot");
    if (this.restore(s)) {
      this.send(
        message({
          type: MessageType.AppResp,
          to: m.from,
          from: this.id,
          term: this.term,
          index: this.log.lastIndex(),
        }),
      );
    } else {
      this.send(
        message({
          type: MessageType.AppResp,
          to: m.from,
          from: this.id,
          term: this.term,
          index: this.log.committed,
        }),
      );
    }
  }

  /** Install a leader's snapshot. Returns false when it brings nothing new. */
  private restore(s: Snapshot): boolean {
    if (s.meta.index <= this.log.committed) return false;
    assert(this.role === "follower", () => `${this.id} installing a snapshot as ${this.role}`);
    if (this.log.matchTerm(s.meta.index, s.meta.term)) {
      // We already hold the snapshot's last entry: fast-forward the commit index only.
      this.log.commitTo(s.meta.index);
      return false;
    }
    this.log.restore(s);
    this.restoreConf(s.meta.confState);
    this.logger.info("installed snapshot", { id: this.id, index: s.meta.index, term: s.meta.term });
    return true;
  }

  /**
   * What no real peer sends, given our state: checked before the message changes anything (term,
   * leader, timers). The assertions these would trip guard our own invariants.
   */
  private refusalOf(m: Message): Refusal | undefined {
    if (m.term < this.term) return undefined; // Stale: answered or ignored as such.
    const last = this.log.lastIndex();
    switch (m.type) {
      case MessageType.Heartbeat:
        // A leader sends at most what this node acked.
        if (m.commit > last)
          return refusal("commit-beyond-log", `commit ${m.commit} beyond our last index ${last}`);
        return undefined;
      case MessageType.AppResp:
        // Our own log in this term never shrinks: an ack beyond it is not a real follower's.
        if (m.term === this.term && this.role === "leader" && !m.reject && m.index > last)
          return refusal("ack-beyond-log", `ack of ${m.index} beyond our last index ${last}`);
        return undefined;
      default:
        return undefined;
    }
  }

  // ---------------------------------------------------------------- introspection

  softState(): { lead: NodeId; role: Role } {
    return { lead: this.lead, role: this.role };
  }
}
