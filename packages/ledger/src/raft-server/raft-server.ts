import type { ConfChange, Entry, Message, NodeId, Rand, Ready, Status } from "@dispenser/raft";
import { EntryType, MessageType, RawNode } from "@dispenser/raft";
import type { Logger } from "pino";
import type { LevelStorage } from "../storage/level-storage.js";
import type { LedgerMetrics } from "../metrics.js";

/**
 * Committed entries applied (and answered) per turn of the event loop. A leader that applied a
 * whole Ready of hundreds of leases before yielding sent every answer in one burst, and its
 * clients, busy with that burst, sent their next requests in one burst too: leader and clients
 * took turns instead of working at the same time. Answering in chunks lets them overlap (at 256
 * concurrent leases, 1.3 times the leases per second; smaller chunks cost more at 16 and 64).
 */
const APPLY_CHUNK = 32;

/** How long a leader holds an empty append in the hope that a later append makes it moot. */
const NOTICE_DELAY_MS = 5;

/**
 * A snapshot is written in slices of about this long, the Raft loop running between them: a
 * state of a million names takes seconds to write, and a loop held that long loses its followers
 * (or, on a follower, lets an election start without it).
 */
const SNAPSHOT_SLICE_MS = 10;
/**
 * Names written between two looks at the clock within a slice: a live name with full memos is
 * about 30 KB of JSON (0.1 ms or more), so a look every few names keeps slices near their length.
 */
const SNAPSHOT_SLICE_NAMES = 8;

/** A snapshot being written (a slice per step) while entries go on applying. */
export interface SnapshotJob {
  /** Write up to `units` more of it (the application chooses the unit); true once complete. */
  step(units: number): boolean;
  /** The bytes: the state as it was when the job began. Only once step() returned true. */
  result(): Uint8Array;
  cancel(): void;
}

/** A job already done: for applications whose snapshot is small. */
export function completedJob(data: Uint8Array): SnapshotJob {
  return { step: () => true, result: () => data, cancel: () => {} };
}

/** The replicated application: applies committed entries, snapshots and restores its state. */
export interface Application<R> {
  /** Apply one committed normal entry (never an empty one); the result goes to its proposer. */
  apply(data: Uint8Array, at: { term: number; index: number }): R;
  /** Begin a snapshot of the state as it is now (applying goes on while it is written). */
  beginSnapshot(): SnapshotJob;
  restore(data: Uint8Array): void;
}

/** Where outgoing Raft messages go. Sending never blocks; a transport may drop (Raft retries). */
export interface Transport {
  send(messages: readonly Message[]): void;
}

export class NotLeaderError extends Error {
  constructor(readonly leader: NodeId) {
    super(
      leader === 0
        ? "not the leader, and no leader is known"
        : `not the leader; the leader is node ${leader}`,
    );
    this.name = "NotLeaderError";
  }
}

/** The proposal was not committed as proposed (leadership changed); retrying is safe with the same request id. */
export class ProposalDroppedError extends Error {
  constructor(reason: string) {
    super(`proposal dropped: ${reason}`);
    this.name = "ProposalDroppedError";
  }
}

export class ProposalRejectedError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ProposalRejectedError";
  }
}

export interface RaftServerOptions<R> {
  id: NodeId;
  storage: LevelStorage;
  app: Application<R>;
  transport: Transport;
  logger: Logger;
  metrics: LedgerMetrics;
  rand: Rand;
  /** Milliseconds per Raft tick. Default 50 (heartbeat every tick, election after 0.5 to 1 s). */
  tickMs?: number;
  /** Ticks without a leader before campaigning (randomized up to twice this). Default 10. */
  electionTicks?: number;
  /** Ticks between heartbeats. Default 1. */
  heartbeatTicks?: number;
  /** Take a snapshot every this many applied entries. Default 10,000. */
  snapshotEntries?: number;
  /** Entries kept behind a snapshot so slightly lagging followers need no snapshot. Default 1,000. */
  compactMarginEntries?: number;
  /** Most proposals waiting for their result. Default 10,000. */
  maxPendingProposals?: number;
  /** A proposal without a result after this long fails (it may still commit: retry with the same request id). Default 10,000. */
  proposalTimeoutMs?: number;
  /** Called on a storage failure: the process must stop (default: exit with status 1). */
  onFatal?: (err: unknown) => void;
}

interface Pending<R> {
  term: number;
  startedAt: number;
  resolve: (r: R) => void;
  reject: (e: Error) => void;
}

/**
 * Runs one Raft node: ticks, steps messages, and processes Readys in the order the core demands
 * (persist with one synced batch, send, apply, advance). Inputs that arrive while a Ready is in
 * flight wait in a queue, so everything that arrives during one fsync is persisted by the next:
 * group commit without a timer.
 */
export class RaftServer<R> {
  readonly id: NodeId;
  private readonly raw: RawNode;
  private readonly storage: LevelStorage;
  private readonly app: Application<R>;
  private readonly transport: Transport;
  private readonly log: Logger;
  private readonly metrics: LedgerMetrics;
  private readonly tickMs: number;
  private readonly snapshotEntries: number;
  private readonly compactMargin: number;
  private readonly maxPending: number;
  private readonly proposalTimeoutMs: number;
  private readonly onFatal: (err: unknown) => void;
  private readonly nodeLabel: { node: string };

  private inputs: (() => void)[] = [];
  /** Per peer, the latest empty append not sent yet (see `send`). */
  private readonly heldNotices = new Map<NodeId, Message>();
  private noticeTimer: NodeJS.Timeout | undefined;
  private busy = false;
  private scheduled = false;
  private stopped = false;
  private failed = false;
  private ticker: NodeJS.Timeout | undefined;
  private readonly pending = new Map<number, Pending<R>>();
  private readonly reads = new Map<
    number,
    { index: number | undefined; resolve: (i: number) => void; reject: (e: Error) => void }
  >();
  private nextReadId = 1;
  private applied: number;
  private snapshotIndex: number;
  private lead: NodeId = 0;
  private role = "follower";
  /** Resolvers waiting for the applied index to reach a value. */
  private appliedWaiters: { index: number; resolve: () => void }[] = [];
  /** The snapshot being written beside the loop, if any (one at a time). */
  private snapshotTask: Promise<void> | undefined;
  /** A written snapshot waiting to be adopted by the loop, between two Readys. */
  private adoptSnapshot: (() => Promise<void>) | undefined;

  constructor(o: RaftServerOptions<R>) {
    this.id = o.id;
    this.storage = o.storage;
    this.app = o.app;
    this.transport = o.transport;
    this.log = o.logger;
    this.metrics = o.metrics;
    this.tickMs = o.tickMs ?? 50;
    this.snapshotEntries = o.snapshotEntries ?? 10_000;
    this.compactMargin = o.compactMarginEntries ?? 1_000;
    this.maxPending = o.maxPendingProposals ?? 10_000;
    this.proposalTimeoutMs = o.proposalTimeoutMs ?? 10_000;
    this.nodeLabel = { node: String(o.id) };
    this.onFatal =
      o.onFatal ??
      ((err) => {
        this.log.fatal(
          { err },
          "fatal error in the Raft loop (storage failure or broken invariant): stopping",
        );
        process.exit(1);
      });
    this.metrics.setRole(this.id, this.role);
    const snap = o.storage.snapshot();
    if (snap.meta.index > 0) this.app.restore(snap.data);
    this.applied = snap.meta.index;
    this.snapshotIndex = snap.meta.index;
    const hs = o.storage.hardState();
    this.metrics.term.set(this.nodeLabel, hs.term);
    this.metrics.commitIndex.set(this.nodeLabel, hs.commit);
    this.metrics.appliedIndex.set(this.nodeLabel, this.applied);
    this.raw = new RawNode({
      id: o.id,
      storage: o.storage,
      electionTicks: o.electionTicks ?? 10,
      heartbeatTicks: o.heartbeatTicks ?? 1,
      rand: o.rand,
      appliedIndex: snap.meta.index,
      logger: {
        info: (msg, fields) => this.log.info(fields ?? {}, msg),
        warn: (msg, fields) => this.log.warn(fields ?? {}, msg),
      },
    });
  }

  start(): void {
    this.ticker = setInterval(
      () =>
        this.enqueue(() => {
          this.raw.tick();
          this.expireProposals();
        }),
      this.tickMs,
    );
    this.ticker.unref();
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.inputs = [];
    if (this.ticker) clearInterval(this.ticker);
    if (this.noticeTimer) clearTimeout(this.noticeTimer);
    this.heldNotices.clear();
    while (this.busy) await new Promise((r) => setTimeout(r, 5));
    // A snapshot being written stops at its next slice; its chunks are deleted at the next start.
    await this.snapshotTask;
    this.adoptSnapshot = undefined;
    for (const p of this.pending.values()) p.reject(new ProposalDroppedError("node stopping"));
    this.pending.clear();
    for (const r of this.reads.values()) r.reject(new ProposalDroppedError("node stopping"));
    this.reads.clear();
  }

  /** Messages from peers. */
  receive(messages: readonly Message[]): void {
    this.enqueue(() => {
      for (const m of messages) this.raw.step(m);
    });
  }

  /** Propose `data` and resolve with its applied result. Rejects with NotLeaderError on a follower. */
  propose(data: Uint8Array): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.enqueue(() => {
        if (this.pending.size >= this.maxPending) {
          reject(
            new ProposalRejectedError("too-many-pending", `more than ${this.maxPending} proposals waiting`),
          );
          return;
        }
        const r = this.raw.propose(data);
        if (!r.ok) {
          reject(
            r.code === "not-leader"
              ? new NotLeaderError(r.leader)
              : new ProposalRejectedError(r.code, `proposal refused: ${r.code}`),
          );
          return;
        }
        this.pending.set(r.index, { term: r.term, startedAt: performance.now(), resolve, reject });
      });
    });
  }

  proposeConfChange(cc: ConfChange): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.enqueue(() => {
        const r = this.raw.proposeConfChange(cc);
        if (!r.ok) {
          const msg = r.code === "invalid-conf-change" ? r.reason : `membership change refused: ${r.code}`;
          reject(
            r.code === "not-leader" ? new NotLeaderError(r.leader) : new ProposalRejectedError(r.code, msg),
          );
          return;
        }
        this.pending.set(r.index, {
          term: r.term,
          startedAt: performance.now(),
          resolve: () => resolve(),
          reject,
        });
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

  /** A linearizable read point: resolves once this node has applied everything committed before the call. */
  readBarrier(timeoutMs = 5_000): Promise<void> {
    return new Promise<number>((resolve, reject) => {
      this.enqueue(() => {
        const id = this.nextReadId++;
        if (!this.raw.readIndex(id)) {
          reject(new NotLeaderError(this.lead));
          return;
        }
        // A forwarded read (or its answer) may be lost: give up rather than wait forever.
        const timer = setTimeout(() => {
          if (this.reads.delete(id))
            reject(new ProposalDroppedError(`read not confirmed within ${timeoutMs} ms`));
        }, timeoutMs);
        this.reads.set(id, {
          index: undefined,
          resolve: (i) => {
            clearTimeout(timer);
            resolve(i);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        });
      });
    }).then((index) => this.waitApplied(index));
  }

  private waitApplied(index: number): Promise<void> {
    if (this.applied >= index) return Promise.resolve();
    return new Promise((resolve) => this.appliedWaiters.push({ index, resolve }));
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
    if (this.scheduled || this.busy) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.run();
    });
  }

  private drainInputs(): void {
    const inputs = this.inputs;
    this.inputs = [];
    for (const f of inputs) f();
  }

  private async run(): Promise<void> {
    if (this.busy || this.failed || this.stopped) return;
    this.busy = true;
    try {
      this.drainInputs();
      if (this.adoptSnapshot) {
        const adopt = this.adoptSnapshot;
        this.adoptSnapshot = undefined;
        await adopt();
      }
      while (!this.failed && !this.stopped && this.raw.hasReady()) {
        await this.handleReady(this.raw.ready());
        this.drainInputs();
      }
    } catch (err) {
      this.failed = true;
      this.onFatal(err);
    } finally {
      this.busy = false;
    }
    if (this.inputs.length > 0) this.kick();
  }

  private async handleReady(rd: Ready): Promise<void> {
    const t0 = performance.now();
    if (rd.softState) this.onSoftState(rd.softState.lead, rd.softState.role);
    // A leader's appends go out while its own write is in flight: the followers' fsyncs then
    // overlap the leader's instead of following it.
    // A committed membership change goes out at once: until the others learn it is committed they
    // count votes in the old configuration, and the leader may be gone the next moment.
    const hold = !rd.committedEntries.some((e) => e.type === EntryType.ConfChange);
    const sentEarly = rd.sendBeforePersist && rd.messages.length > 0;
    if (sentEarly) this.send(rd.messages, hold);
    // Committed entries already on this node's synced disk (written by an earlier Ready, not
    // replaced by this one) are applied, and their proposers answered, while this Ready's new
    // entries are written: a reply then never waits for the fsync of later proposals. A leader
    // applies them before preparing the write, so its answers leave with its appends; a follower
    // after starting the write, so applying does not hold up its ack (which waits for the write).
    const early = this.durable(rd);
    if (early && sentEarly) await this.applyCommitted(rd);
    const applyNow = early && !sentEarly;
    if (this.storage.needsWrite(rd)) {
      // node:http2 puts queued frames on the socket at the next turn of the event loop; preparing
      // the write below takes the main thread about 0.1 ms first. Let the appends leave before:
      // a follower's fsync is on the commit path, this node's own runs beside it.
      if (sentEarly) await new Promise((r) => setImmediate(r));
      const f0 = performance.now();
      const written = this.storage.persist(rd);
      if (applyNow) await this.applyCommitted(rd);
      await written;
      this.metrics.fsyncSeconds.observe(this.nodeLabel, (performance.now() - f0) / 1000);
    } else {
      if (applyNow) await this.applyCommitted(rd);
      if (rd.hardState) this.storage.keepHardState(rd.hardState);
    }
    if (!rd.sendBeforePersist && rd.messages.length > 0) this.send(rd.messages, hold);
    if (rd.snapshot) {
      this.app.restore(rd.snapshot.data);
      this.applied = rd.snapshot.meta.index;
      this.snapshotIndex = rd.snapshot.meta.index;
      this.metrics.snapshots.inc({ node: String(this.id), kind: "installed" });
      this.log.info({ index: rd.snapshot.meta.index }, "installed snapshot from leader");
    }
    if (!early) await this.applyCommitted(rd);
    this.raw.advance();
    const node = this.nodeLabel;
    // A Ready carries the hard state whenever it changed (no full status() per Ready).
    if (rd.hardState) {
      this.metrics.term.set(node, rd.hardState.term);
      this.metrics.commitIndex.set(node, rd.hardState.commit);
    }
    this.metrics.appliedIndex.set(node, this.applied);
    if (!this.snapshotTask && this.applied - this.snapshotIndex >= this.snapshotEntries) this.startSnapshot();
    this.metrics.readySeconds.observe(node, (performance.now() - t0) / 1000);
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
      if (this.heldNotices.size > 0 && !this.noticeTimer) {
        this.noticeTimer = setTimeout(() => {
          this.noticeTimer = undefined;
          const held = [...this.heldNotices.values()];
          this.heldNotices.clear();
          if (held.length > 0 && !this.stopped && !this.failed) this.transport.send(held);
        }, NOTICE_DELAY_MS);
      }
    }
    if (out.length > 0) this.transport.send(out);
  }

  /** Whether every committed entry of `rd` is already durable here and not rewritten by `rd`. */
  private durable(rd: Ready): boolean {
    const n = rd.committedEntries.length;
    if (n === 0 || rd.snapshot) return false;
    // A membership change takes effect in advance(): its proposer must see it in force.
    if (rd.committedEntries.some((e) => e.type === EntryType.ConfChange)) return false;
    const last = rd.committedEntries[n - 1]!.index;
    if (last > this.storage.lastIndex()) return false;
    return rd.entries.length === 0 || last < rd.entries[0]!.index;
  }

  /**
   * Apply a Ready's committed entries in order, letting the event loop turn after every
   * APPLY_CHUNK of them so that the answers made so far go out while the rest are applied. Nothing
   * else runs the Raft loop meanwhile (inputs queue), so the order of effects is unchanged.
   */
  private async applyCommitted(rd: Ready): Promise<void> {
    const entries = rd.committedEntries;
    for (let i = 0; i < entries.length; i++) {
      this.applyEntry(entries[i]!);
      if ((i + 1) % APPLY_CHUNK === 0 && i + 1 < entries.length) await new Promise((r) => setImmediate(r));
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
    const p = this.pending.get(e.index);
    if (!p) return;
    this.pending.delete(e.index);
    if (p.term !== e.term) {
      p.reject(new ProposalDroppedError(`index ${e.index} was taken by term ${e.term}`));
      return;
    }
    this.metrics.proposalSeconds.observe(this.nodeLabel, (performance.now() - p.startedAt) / 1000);
    p.resolve(result as R);
  }

  /**
   * Fail proposals that have waited too long, oldest first (pending is in index order, which is
   * the order they were made in): one sweep per tick instead of a timer per proposal.
   */
  private expireProposals(): void {
    const before = performance.now() - this.proposalTimeoutMs;
    for (const [index, p] of this.pending) {
      if (p.startedAt > before) break;
      this.pending.delete(index);
      p.reject(new ProposalDroppedError(`no result within ${this.proposalTimeoutMs} ms`));
    }
  }

  private releaseAppliedWaiters(): void {
    if (this.appliedWaiters.length === 0) return;
    const still: typeof this.appliedWaiters = [];
    for (const w of this.appliedWaiters) {
      if (w.index <= this.applied) w.resolve();
      else still.push(w);
    }
    this.appliedWaiters = still;
  }

  private onSoftState(lead: NodeId, role: string): void {
    if (lead !== this.lead) {
      this.metrics.leaderChanges.inc({ node: String(this.id) });
      this.log.info({ lead, role }, "leader changed");
    }
    const wasLeader = this.role === "leader";
    this.heldNotices.clear();
    this.lead = lead;
    this.role = role;
    this.metrics.setRole(this.id, role);
    if (wasLeader && role !== "leader") {
      // Our proposals may still commit under the next leader; callers retry with the same request id.
      for (const p of this.pending.values()) p.reject(new ProposalDroppedError("leadership lost"));
      this.pending.clear();
      for (const r of this.reads.values()) r.reject(new ProposalDroppedError("leadership lost"));
      this.reads.clear();
    }
  }

  /**
   * Snapshot the state at the applied index without holding up the loop: the application writes
   * it a slice at a time while entries go on applying (it keeps the state of the start), its
   * chunks are written to disk beside the loop's own writes, and only adopting it (one small
   * batch that also compacts the log) runs in the loop, between two Readys.
   */
  private startSnapshot(): void {
    const index = this.applied;
    const confState = this.raw.confState();
    const job = this.app.beginSnapshot();
    const t0 = performance.now();
    const task = (async () => {
      let done = false;
      while (!done) {
        await new Promise((r) => setImmediate(r));
        if (this.stopped || this.failed) {
          job.cancel();
          return;
        }
        const until = performance.now() + SNAPSHOT_SLICE_MS;
        do done = job.step(SNAPSHOT_SLICE_NAMES);
        while (!done && performance.now() < until);
      }
      const data = job.result();
      const staged = await this.storage.stageSnapshot(data);
      if (this.stopped || this.failed) return;
      this.adoptSnapshot = async () => {
        this.snapshotTask = undefined;
        // A leader's snapshot installed meanwhile is newer: this one is moot.
        if (this.storage.snapshot().meta.index >= index) {
          await this.storage.dropStaged(staged);
          return;
        }
        const compactTo = Math.max(this.storage.firstIndex(), index - this.compactMargin);
        await this.storage.saveSnapshot(index, confState, data, staged, compactTo);
        this.snapshotIndex = index;
        this.metrics.snapshots.inc({ node: String(this.id), kind: "taken" });
        this.log.info(
          { index, compactTo, bytes: data.byteLength, ms: Math.round(performance.now() - t0) },
          "took snapshot",
        );
      };
      this.kick();
    })().catch((err: unknown) => {
      job.cancel();
      if (this.stopped || this.failed) return;
      this.failed = true;
      this.onFatal(err);
    });
    this.snapshotTask = task;
  }
}
