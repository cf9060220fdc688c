import type { Role } from "../raft.js";
import type { Ready, RawNode, Status } from "../rawnode.js";
import type { ConfChange, ConfState, Entry, Message, NodeId } from "../types.js";
import { EntryType, MessageType } from "../types.js";
import { NotLeaderError, ProposalDroppedError, ProposalRejectedError } from "./errors.js";
import type { Answer, Application, Done, LoopEvents, LoopHost, LoopStorage, SnapshotJob } from "./host.js";

/**
 * Committed entries applied (and answered) per turn of the host's event loop. A leader that
 * applied a whole Ready of hundreds of leases before yielding sent every answer in one burst, and
 * its clients, busy with that burst, sent their next requests in one burst too: leader and clients
 * took turns instead of working at the same time. Answering in chunks lets them overlap (at 256
 * concurrent leases, 1.3 times the leases per second; smaller chunks cost more at 16 and 64).
 */
const APPLY_CHUNK = 32;

/** How long a leader holds an empty append in the hope that a later append makes it moot. */
const NOTICE_DELAY_MS = 5;

/**
 * A snapshot is written in slices of about this long, the loop running between them: a state of a
 * million names takes seconds to write, and a loop held that long loses its followers (or, on a
 * follower, lets an election start without it).
 */
const SNAPSHOT_SLICE_MS = 10;
/**
 * Names written between two looks at the clock within a slice: a live name with full memos is
 * about 30 KB of JSON (0.1 ms or more), so a look every few names keeps slices near their length.
 */
const SNAPSHOT_SLICE_NAMES = 8;

export const READY_LOOP_DEFAULTS = {
  /** Take a snapshot every this many applied entries. */
  snapshotEntries: 10_000,
  /** Entries kept behind a snapshot so slightly lagging followers need no snapshot. */
  compactMarginEntries: 1_000,
  /** Most proposals waiting for their result. */
  maxPendingProposals: 10_000,
  /** A proposal without a result after this long fails (it may still commit: retry with the same request id). */
  proposalTimeoutMs: 10_000,
} as const;

export interface ReadyLoopOptions<R, Staged> {
  /** The core, built by the caller on `storage`'s state (applied index: the snapshot's). */
  raw: RawNode;
  storage: LoopStorage<Staged>;
  app: Application<R>;
  host: LoopHost;
  events?: LoopEvents;
  /** The index the application's state reflects at start (its snapshot's). */
  applied: number;
  /**
   * The first id of this node's read requests. It must lie beyond every id an earlier run of the
   * node used: a leader's answer to a read of the previous run may arrive after a restart, and
   * would be taken for the answer to a new read with the same id (a stale read). Hosts draw it at
   * random from a range far wider than one run's reads.
   */
  firstReadId: number;
  snapshotEntries?: number;
  compactMarginEntries?: number;
  maxPendingProposals?: number;
  proposalTimeoutMs?: number;
}

/**
 * Whether persisting `rd` needs a synced write. A hard state that moved only its commit index is not
 * written on its own: the commit index need not be durable (a restarted node learns it again from
 * the leader, and replays less meanwhile), so it rides along with the next write of entries, a vote
 * or a snapshot. No Ready waits on the disk just to record a commit.
 */
export function needsWrite(rd: Ready): boolean {
  return rd.mustSync || rd.snapshot !== undefined || rd.entries.length > 0;
}

/** A pause of the loop: the host calls `resume` when the awaited step is done. */
type Suspend = (resume: Done<unknown>) => void;
/** A run of the loop between pauses. Generators keep it one piece of code for both hosts. */
type Steps = Generator<Suspend, void, unknown>;

interface Pending<R> {
  term: number;
  startedAt: number;
  answer: Answer<R>;
}

const isConfChange = (e: Entry): boolean => e.type === EntryType.ConfChange;

/**
 * Runs one Raft node: takes inputs (ticks, messages, proposals, reads), and handles each Ready in
 * the order the core demands (persist with one synced write, send, apply, advance), with the
 * overlaps that make it fast: a leader's appends leave before its own write; committed entries
 * already on this node's synced disk are applied, and answered, while the Ready's new entries are
 * written. Inputs that arrive while a Ready is handled wait in a queue, so everything that arrives
 * during one fsync is persisted by the next: group commit without a timer.
 *
 * All I/O and time go through the host, so the Raft server and the simulator run this same code.
 */
export class ReadyLoop<R, Staged = unknown> {
  readonly raw: RawNode;
  private readonly storage: LoopStorage<Staged>;
  private readonly app: Application<R>;
  private readonly host: LoopHost;
  private readonly events: LoopEvents;
  private readonly snapshotEntries: number;
  private readonly compactMargin: number;
  private readonly maxPending: number;
  private readonly proposalTimeoutMs: number;

  private inputs: (() => void)[] = [];
  /** Per peer, the latest empty append not sent yet (see `send`). */
  private readonly heldNotices = new Map<NodeId, Message>();
  private cancelNotice: (() => void) | undefined;
  private busy = false;
  private scheduled = false;
  private stopped = false;
  private failed = false;
  private readonly stopWaiters: (() => void)[] = [];
  private readonly pending = new Map<number, Pending<R>>();
  private readonly reads = new Map<
    number,
    { resolve: (index: number) => void; reject: (e: Error) => void }
  >();
  private nextReadId: number;
  private applied: number;
  private snapshotIndex: number;
  private lead: NodeId = 0;
  private role: Role = "follower";
  /** Membership changes applied in this Ready: answered once advance() puts them in force. */
  private inForce: Answer<R>[] = [];
  /** Callbacks waiting for the applied index to reach a value. */
  private appliedWaiters: { index: number; k: () => void }[] = [];
  /** A snapshot is being written or waits to be adopted (one at a time). */
  private snapshotPending = false;
  /** The snapshot's own steps are running beside the loop. */
  private snapshotWriting = false;
  /** A written snapshot waiting to be adopted by the loop, between two Readys. */
  private adopt: (() => Steps) | undefined;

  constructor(o: ReadyLoopOptions<R, Staged>) {
    this.raw = o.raw;
    this.storage = o.storage;
    this.app = o.app;
    this.host = o.host;
    this.events = o.events ?? {};
    this.snapshotEntries = o.snapshotEntries ?? READY_LOOP_DEFAULTS.snapshotEntries;
    this.compactMargin = o.compactMarginEntries ?? READY_LOOP_DEFAULTS.compactMarginEntries;
    this.maxPending = o.maxPendingProposals ?? READY_LOOP_DEFAULTS.maxPendingProposals;
    this.proposalTimeoutMs = o.proposalTimeoutMs ?? READY_LOOP_DEFAULTS.proposalTimeoutMs;
    this.applied = o.applied;
    this.snapshotIndex = o.applied;
    this.nextReadId = o.firstReadId;
  }

  // ---------------------------------------------------------------- inputs

  start(): void {
    this.kick();
  }

  /** Stop taking inputs; `done` once the loop and any snapshot being written are at rest. */
  stop(done: () => void): void {
    this.stopped = true;
    this.inputs = [];
    this.cancelNotice?.();
    this.cancelNotice = undefined;
    this.heldNotices.clear();
    this.stopWaiters.push(done);
    this.settleStop();
  }

  tick(): void {
    this.enqueue(() => {
      this.raw.tick();
      this.expireProposals();
    });
  }

  /** Messages from peers; one that breaks a rule is dropped and reported, never asserted on. */
  step(messages: readonly Message[]): void {
    this.enqueue(() => {
      for (const m of messages) {
        const refused = this.raw.step(m);
        if (refused) this.events.refused?.(m, refused);
      }
    });
  }

  /** Propose `data`; answered with its applied result, or NotLeaderError on a follower. */
  propose(data: Uint8Array, answer: Answer<R>): void {
    this.enqueue(() => {
      if (this.pending.size >= this.maxPending) {
        answer.reject(
          new ProposalRejectedError("too-many-pending", `more than ${this.maxPending} proposals waiting`),
        );
        return;
      }
      const r = this.raw.propose(data);
      if (!r.ok) {
        answer.reject(
          r.code === "not-leader"
            ? new NotLeaderError(r.leader)
            : new ProposalRejectedError(r.code, `proposal refused: ${r.code}`),
        );
        return;
      }
      this.pending.set(r.index, { term: r.term, startedAt: this.host.now(), answer });
    });
  }

  /** Propose a membership change; answered once it is in force on this node. */
  proposeConfChange(cc: ConfChange, answer: Answer<void>): void {
    this.enqueue(() => {
      const r = this.raw.proposeConfChange(cc);
      if (!r.ok) {
        const msg = r.code === "invalid-conf-change" ? r.reason : `membership change refused: ${r.code}`;
        answer.reject(
          r.code === "not-leader" ? new NotLeaderError(r.leader) : new ProposalRejectedError(r.code, msg),
        );
        return;
      }
      this.pending.set(r.index, {
        term: r.term,
        startedAt: this.host.now(),
        answer: { resolve: () => answer.resolve(), reject: (e) => answer.reject(e) },
      });
    });
  }

  /** A linearizable read point: answered once this node has applied everything committed before the call. */
  readBarrier(timeoutMs: number, answer: Answer<void>): void {
    this.enqueue(() => {
      const id = this.nextReadId++;
      if (!this.raw.readIndex(id)) {
        answer.reject(new NotLeaderError(this.lead));
        return;
      }
      // A forwarded read (or its answer) may be lost, and a cut-off follower may never apply up
      // to the read index: give up rather than wait forever. The read is answered once.
      let settled = false;
      const settle = (f: () => void): void => {
        if (settled) return;
        settled = true;
        cancel();
        f();
      };
      const cancel = this.host.after(timeoutMs, () => {
        this.reads.delete(id);
        settle(() => answer.reject(new ProposalDroppedError(`read not served within ${timeoutMs} ms`)));
      });
      this.reads.set(id, {
        resolve: (index) => this.whenApplied(index, () => settle(() => answer.resolve())),
        reject: (e) => settle(() => answer.reject(e)),
      });
    });
  }

  reportUnreachable(id: NodeId): void {
    this.enqueue(() => this.raw.reportUnreachable(id));
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    this.enqueue(() => this.raw.reportSnapshot(id, ok));
  }

  transferLeader(to: NodeId): void {
    this.enqueue(() => this.raw.transferLeader(to));
  }

  status(): Status {
    // Entries are applied (and answered) before advance() tells the core: report what is applied.
    return { ...this.raw.status(), applied: this.applied };
  }

  leader(): NodeId {
    return this.lead;
  }

  isLeader(): boolean {
    return this.role === "leader";
  }

  // ---------------------------------------------------------------- the loop

  private enqueue(f: () => void): void {
    if (this.stopped || this.failed) return;
    this.inputs.push(f);
    this.kick();
  }

  private kick(): void {
    if (this.scheduled || this.busy || this.stopped || this.failed) return;
    this.scheduled = true;
    this.host.turn(() => {
      this.scheduled = false;
      this.run();
    });
  }

  private run(): void {
    if (this.busy || this.failed || this.stopped) return;
    this.busy = true;
    this.drive(
      this.cycle(),
      (err) => this.fail(err),
      () => {
        this.busy = false;
        if (this.stopped) this.settleStop();
        else if (this.inputs.length > 0 || this.adopt) this.kick();
      },
    );
  }

  /**
   * Run `steps` to its end, resuming it each time the host completes what it waits for. Each pause
   * resumes once: a host that completes one twice would let the loop run ahead of its disk, so a
   * second completion is a fatal error, never a second step. `finished` runs once, whatever fails.
   */
  private drive(steps: Steps, onError: (err: unknown) => void, finished: () => void): void {
    let ended = false;
    const end = (err: unknown): void => {
      if (ended) return;
      ended = true;
      try {
        if (err !== undefined) onError(err);
      } finally {
        finished();
      }
    };
    const step = (err?: unknown, value?: unknown): void => {
      let r: IteratorResult<Suspend, void>;
      try {
        r = err === undefined ? steps.next(value) : steps.throw(err);
      } catch (e) {
        end(e);
        return;
      }
      if (r.done) {
        end(undefined);
        return;
      }
      let resumed = false;
      const resume: Done<unknown> = (e, v) => {
        if (resumed) {
          end(new Error("a pause of the Ready loop was resumed twice"));
          return;
        }
        resumed = true;
        step(e, v);
      };
      try {
        r.value(resume);
      } catch (e) {
        // The host failed to start what the loop waits for.
        if (resumed) end(e);
        else resume(e);
      }
    };
    step();
  }

  private fail(err: unknown): void {
    if (this.failed) return;
    this.failed = true;
    try {
      this.host.fatal(err);
    } finally {
      this.rejectAll(new ProposalDroppedError("the node failed"));
    }
  }

  private readonly turn: Suspend = (k) => this.host.turn(() => k());

  private drainInputs(): void {
    const inputs = this.inputs;
    this.inputs = [];
    for (const f of inputs) f();
    this.events.settled?.();
  }

  private *cycle(): Steps {
    this.drainInputs();
    if (this.adopt) {
      const adopt = this.adopt;
      this.adopt = undefined;
      yield* adopt();
    }
    while (!this.failed && !this.stopped && this.raw.hasReady()) {
      yield* this.handleReady(this.raw.ready());
      this.drainInputs();
    }
  }

  private *handleReady(rd: Ready): Steps {
    const t0 = this.host.now();
    if (rd.softState) this.onSoftState(rd.softState.lead, rd.softState.role);
    // A committed membership change goes out at once: until the others learn it is committed they
    // count votes in the old configuration, and the leader may be gone the next moment.
    const hold = !rd.committedEntries.some(isConfChange);
    // A leader's appends go out while its own write is in flight: the followers' fsyncs then
    // overlap the leader's instead of following it. Anything else waits for the write: a
    // follower's ack, or a vote, promises what must be on its disk first.
    const sentEarly = rd.sendBeforePersist && rd.messages.length > 0;
    if (sentEarly) this.send(rd.messages, hold);
    // Committed entries already on this node's synced disk (written by an earlier Ready, not
    // replaced by this one) are applied, and their proposers answered, while this Ready's new
    // entries are written: a reply then never waits for the fsync of later proposals. A leader
    // applies them before preparing the write, so its answers leave with its appends; a follower
    // after starting the write, so applying does not hold up its ack (which waits for the write).
    const early = this.durable(rd);
    if (early && sentEarly) yield* this.applyCommitted(rd);
    const applyNow = early && !sentEarly;
    if (needsWrite(rd)) {
      // node:http2 puts queued frames on the socket at the next turn of the event loop; preparing
      // the write below takes the main thread about 0.1 ms first. Let the appends leave before:
      // a follower's fsync is on the commit path, this node's own runs beside it.
      if (sentEarly) yield this.turn;
      const f0 = this.host.now();
      const written = begin((k) => this.storage.persist(rd, k));
      if (applyNow) yield* this.applyCommitted(rd);
      yield written;
      this.events.wrote?.(this.host.now() - f0);
    } else {
      if (applyNow) yield* this.applyCommitted(rd);
      if (rd.hardState) this.storage.keepHardState(rd.hardState);
    }
    if (!sentEarly && rd.messages.length > 0) this.send(rd.messages, hold);
    if (rd.snapshot) {
      this.app.restore(rd.snapshot.data);
      this.applied = rd.snapshot.meta.index;
      this.snapshotIndex = rd.snapshot.meta.index;
      this.events.snapshotInstalled?.(rd.snapshot.meta.index);
    }
    if (!early) yield* this.applyCommitted(rd);
    this.raw.advance();
    for (const answer of this.inForce.splice(0)) answer.resolve(undefined as R);
    this.events.handled?.(this.host.now() - t0, rd.hardState, this.applied);
    this.events.settled?.();
    if (!this.snapshotPending && this.applied - this.snapshotIndex >= this.snapshotEntries)
      this.startSnapshot();
  }

  /**
   * A leader's empty appends (a new commit index, mostly) wait a moment: the next append to the
   * same peer carries a commit index at least as new and makes them moot, which at low load halves
   * the messages per commit (and the followers' replies to them). Raft tolerates any delay; the
   * commit index also reaches followers with each heartbeat and read round.
   */
  private send(messages: readonly Message[], hold: boolean): void {
    let out = messages;
    if (!hold) {
      // Anything held is older than these messages: it goes first.
      out = [...this.heldNotices.values(), ...messages];
      this.heldNotices.clear();
    } else if (this.role === "leader") {
      out = messages.filter((m) => {
        if (m.type !== MessageType.App || m.entries.length > 0) return true;
        this.heldNotices.set(m.to, m);
        return false;
      });
      for (const m of out) if (m.type === MessageType.App) this.heldNotices.delete(m.to);
      if (this.heldNotices.size > 0 && !this.cancelNotice) {
        this.cancelNotice = this.host.after(NOTICE_DELAY_MS, () => {
          this.cancelNotice = undefined;
          const held = [...this.heldNotices.values()];
          this.heldNotices.clear();
          if (held.length > 0 && !this.stopped && !this.failed) this.host.send(held);
        });
      }
    }
    if (out.length > 0) this.host.send(out);
  }

  /** Whether every committed entry of `rd` is already durable here and not rewritten by `rd`. */
  private durable(rd: Ready): boolean {
    const n = rd.committedEntries.length;
    if (n === 0 || rd.snapshot) return false;
    const last = rd.committedEntries[n - 1]!.index;
    if (last > this.storage.lastIndex()) return false;
    return rd.entries.length === 0 || last < rd.entries[0]!.index;
  }

  /**
   * Apply a Ready's committed entries in order, letting the host's event loop turn after every
   * APPLY_CHUNK of them so that the answers made so far go out while the rest are applied. Nothing
   * else runs the loop meanwhile (inputs queue), so the order of effects is unchanged.
   */
  private *applyCommitted(rd: Ready): Steps {
    const entries = rd.committedEntries;
    for (let i = 0; i < entries.length; i++) {
      this.applyEntry(entries[i]!);
      if ((i + 1) % APPLY_CHUNK === 0 && i + 1 < entries.length) yield this.turn;
    }
    for (const rs of rd.readStates) {
      const r = this.reads.get(rs.requestId);
      if (r) {
        this.reads.delete(rs.requestId);
        r.resolve(rs.index);
      }
    }
    this.releaseAppliedWaiters();
  }

  private applyEntry(e: Entry): void {
    let result: R | undefined;
    if (e.type === EntryType.Normal && e.data.byteLength > 0)
      result = this.app.apply(e.data, { term: e.term, index: e.index });
    this.applied = e.index;
    this.events.applied?.(e);
    const p = this.pending.get(e.index);
    if (!p) return;
    this.pending.delete(e.index);
    if (p.term !== e.term) {
      p.answer.reject(new ProposalDroppedError(`index ${e.index} was taken by term ${e.term}`));
      return;
    }
    this.events.answered?.(this.host.now() - p.startedAt);
    // A membership change takes effect in advance(), and it may be applied early (during the
    // write) or before a yield between chunks: its proposer is answered once it is in force.
    if (e.type === EntryType.ConfChange) this.inForce.push(p.answer);
    else p.answer.resolve(result as R);
  }

  /**
   * Fail proposals that have waited too long, oldest first (pending is in index order, which is
   * the order they were made in): one sweep per tick instead of a timer per proposal.
   */
  private expireProposals(): void {
    const before = this.host.now() - this.proposalTimeoutMs;
    for (const [index, p] of this.pending) {
      if (p.startedAt > before) break;
      this.pending.delete(index);
      p.answer.reject(new ProposalDroppedError(`no result within ${this.proposalTimeoutMs} ms`));
    }
  }

  private whenApplied(index: number, k: () => void): void {
    if (this.applied >= index) k();
    else this.appliedWaiters.push({ index, k });
  }

  private releaseAppliedWaiters(): void {
    if (this.appliedWaiters.length === 0) return;
    const still: typeof this.appliedWaiters = [];
    for (const w of this.appliedWaiters) {
      if (w.index <= this.applied) w.k();
      else still.push(w);
    }
    this.appliedWaiters = still;
  }

  private onSoftState(lead: NodeId, role: Role): void {
    const leaderChanged = lead !== this.lead;
    const wasLeader = this.role === "leader";
    this.heldNotices.clear();
    this.lead = lead;
    this.role = role;
    this.events.softState?.(lead, role, leaderChanged);
    if (wasLeader && role !== "leader") {
      // Our proposals may still commit under the next leader; callers retry with the same request id.
      this.rejectAll(new ProposalDroppedError("leadership lost"));
    }
  }

  private rejectAll(err: Error): void {
    for (const p of this.pending.values()) p.answer.reject(err);
    this.pending.clear();
    for (const a of this.inForce.splice(0)) a.reject(err);
    for (const r of this.reads.values()) r.reject(err);
    this.reads.clear();
  }

  /** Once stopped and at rest, answer what waits and tell whoever waits for the stop. */
  private settleStop(): void {
    if (!this.stopped || this.busy || this.snapshotWriting) return;
    this.adopt = undefined;
    this.rejectAll(new ProposalDroppedError("node stopping"));
    for (const k of this.stopWaiters.splice(0)) k();
  }

  // ---------------------------------------------------------------- snapshots

  /**
   * Snapshot the state at the applied index without holding up the loop: the application writes
   * it a slice at a time while entries go on applying (it keeps the state of the start), its
   * data is staged on disk beside the loop's own writes, and only adopting it (one small write
   * that also compacts the log) runs in the loop, between two Readys.
   */
  private startSnapshot(): void {
    const index = this.applied;
    const confState = this.raw.confState();
    const job = this.app.beginSnapshot();
    this.snapshotPending = true;
    this.snapshotWriting = true;
    this.drive(
      this.writeSnapshot(index, confState, job, this.host.now()),
      (err) => {
        job.cancel();
        // A snapshot being written when the node stops is abandoned; its data is deleted at the next start.
        if (!this.stopped && !this.failed) this.fail(err);
      },
      () => {
        this.snapshotWriting = false;
        if (!this.adopt) this.snapshotPending = false;
        if (this.stopped) this.settleStop();
        else if (this.adopt) this.kick();
      },
    );
  }

  private *writeSnapshot(index: number, confState: ConfState, job: SnapshotJob, t0: number): Steps {
    let done = false;
    while (!done) {
      yield this.turn;
      if (this.stopped || this.failed) {
        job.cancel();
        return;
      }
      const until = this.host.now() + SNAPSHOT_SLICE_MS;
      do done = job.step(SNAPSHOT_SLICE_NAMES);
      while (!done && this.host.now() < until);
    }
    const data = job.result();
    const staged = (yield (k) => this.storage.stageSnapshot(data, k)) as Staged;
    if (this.stopped || this.failed) return;
    this.adopt = () => this.adoptSnapshot(index, confState, data, staged, t0);
  }

  private *adoptSnapshot(
    index: number,
    confState: ConfState,
    data: Uint8Array,
    staged: Staged,
    t0: number,
  ): Steps {
    this.snapshotPending = false;
    // A leader's snapshot installed meanwhile is newer: this one is moot.
    if (this.storage.snapshot().meta.index >= index) {
      yield (k) => this.storage.dropStaged(staged, k);
      return;
    }
    const compactTo = Math.max(this.storage.firstIndex(), index - this.compactMargin);
    yield (k) => this.storage.saveSnapshot(index, confState, data, staged, compactTo, k);
    this.snapshotIndex = index;
    this.events.snapshotTaken?.({
      index,
      compactTo,
      bytes: data.byteLength,
      ms: this.host.now() - t0,
    });
  }
}

/** Start an asynchronous step now; the returned pause waits for its end (or not at all if it is over). */
function begin(start: (done: Done) => void): Suspend {
  let outcome: { err: unknown } | undefined;
  let waiter: Done<unknown> | undefined;
  start((err) => {
    if (waiter) waiter(err);
    else outcome = { err };
  });
  return (k) => {
    if (outcome) k(outcome.err);
    else waiter = k;
  };
}
