import type {
  Application,
  ConfChange,
  Done,
  LoopStorage,
  Message,
  NodeId,
  Rand,
  Status,
} from "@dispenser/raft";
import { DEFAULT_TICK_MS, RawNode, ReadyLoop } from "@dispenser/raft";
import { randomInt } from "node:crypto";
import type { Logger } from "pino";
import type { LedgerMetrics } from "../metrics.js";
import type { LevelStorage, StagedSnapshot } from "../storage/level-storage.js";

export type { Application, SnapshotJob } from "@dispenser/raft";
export {
  DEFAULT_TICK_MS,
  NotLeaderError,
  ProposalDroppedError,
  ProposalRejectedError,
  completedJob,
} from "@dispenser/raft";

/** Where outgoing Raft messages go. Sending never blocks; a transport may drop (Raft retries). */
export interface Transport {
  send(messages: readonly Message[]): void;
}

export interface RaftServerOptions<R> {
  id: NodeId;
  storage: LevelStorage;
  app: Application<R>;
  transport: Transport;
  logger: Logger;
  metrics: LedgerMetrics;
  rand: Rand;
  /** Milliseconds per Raft tick. Default DEFAULT_TICK_MS. */
  tickMs?: number;
  /** Ticks without a leader before campaigning (randomized up to twice this). Default 10. */
  electionTicks?: number;
  /** Ticks between heartbeats. Default 1. */
  heartbeatTicks?: number;
  /** See READY_LOOP_DEFAULTS. */
  snapshotEntries?: number;
  compactMarginEntries?: number;
  maxPendingProposals?: number;
  proposalTimeoutMs?: number;
  /** Called on a storage failure: the process must stop (default: exit with status 1). */
  onFatal?: (err: unknown) => void;
}

/** Promise-based LevelDB writes as the loop's completion callbacks. */
function settle<T>(p: Promise<T>, done: Done<T>): void {
  p.then(
    (v) => done(undefined, v),
    (err: unknown) => done(err ?? new Error("storage write failed")),
  );
}

function loopStorage(s: LevelStorage): LoopStorage<StagedSnapshot> {
  return {
    firstIndex: () => s.firstIndex(),
    lastIndex: () => s.lastIndex(),
    snapshot: () => s.snapshot(),
    keepHardState: (hs) => s.keepHardState(hs),
    persist: (rd, done) => settle(s.persist(rd), done),
    stageSnapshot: (data, done) => settle(s.stageSnapshot(data), done),
    dropStaged: (staged, done) => settle(s.dropStaged(staged), done),
    saveSnapshot: (index, confState, data, staged, compactTo, done) =>
      settle(
        s.saveSnapshot(index, confState, data, staged, compactTo).then(() => undefined),
        done,
      ),
  };
}

/**
 * One Raft node in a process: the Ready loop (shared with the simulator) on LevelDB, the peer
 * transport, Node's timers and clock, and the node's metrics and logs.
 */
export class RaftServer<R> {
  readonly id: NodeId;
  private readonly loop: ReadyLoop<R, StagedSnapshot>;
  private readonly tickMs: number;
  private ticker: NodeJS.Timeout | undefined;

  constructor(o: RaftServerOptions<R>) {
    this.id = o.id;
    this.tickMs = o.tickMs ?? DEFAULT_TICK_MS;
    const log = o.logger;
    const metrics = o.metrics;
    const node = { node: String(o.id) };
    /** Refusals so far: the first is logged, then every hundredth. */
    let refusedLogged = 0;
    const onFatal =
      o.onFatal ??
      ((err: unknown) => {
        log.fatal({ err }, "fatal error in the Raft loop (storage failure or broken invariant): stopping");
        process.exit(1);
      });
    metrics.setRole(o.id, "follower");
    const snap = o.storage.snapshot();
    if (snap.meta.index > 0) o.app.restore(snap.data);
    const hs = o.storage.hardState();
    metrics.term.set(node, hs.term);
    metrics.commitIndex.set(node, hs.commit);
    metrics.appliedIndex.set(node, snap.meta.index);
    const raw = new RawNode({
      id: o.id,
      storage: o.storage,
      electionTicks: o.electionTicks ?? 10,
      heartbeatTicks: o.heartbeatTicks ?? 1,
      rand: o.rand,
      appliedIndex: snap.meta.index,
      logger: {
        info: (msg, fields) => log.info(fields ?? {}, msg),
        warn: (msg, fields) => log.warn(fields ?? {}, msg),
      },
    });
    this.loop = new ReadyLoop<R, StagedSnapshot>({
      raw,
      storage: loopStorage(o.storage),
      app: o.app,
      applied: snap.meta.index,
      // 2^48 random starting points 16 apart: no two runs of a node share a read id in practice.
      firstReadId: randomInt(2 ** 48 - 1) * 16 + 1,
      ...(o.snapshotEntries !== undefined ? { snapshotEntries: o.snapshotEntries } : {}),
      ...(o.compactMarginEntries !== undefined ? { compactMarginEntries: o.compactMarginEntries } : {}),
      ...(o.maxPendingProposals !== undefined ? { maxPendingProposals: o.maxPendingProposals } : {}),
      ...(o.proposalTimeoutMs !== undefined ? { proposalTimeoutMs: o.proposalTimeoutMs } : {}),
      host: {
        send: (messages) => o.transport.send(messages),
        turn: (k) => setImmediate(k),
        after: (ms, k) => {
          const t = setTimeout(k, ms);
          return () => clearTimeout(t);
        },
        now: () => performance.now(),
        fatal: onFatal,
      },
      events: {
        softState: (lead, role, leaderChanged) => {
          if (leaderChanged) {
            metrics.leaderChanges.inc(node);
            log.info({ lead, role }, "leader changed");
          }
          metrics.setRole(o.id, role);
        },
        wrote: (ms) => metrics.fsyncSeconds.observe(node, ms / 1000),
        answered: (ms) => metrics.proposalSeconds.observe(node, ms / 1000),
        handled: (ms, hardState, applied) => {
          // A Ready carries the hard state whenever it changed (no full status() per Ready).
          if (hardState) {
            metrics.term.set(node, hardState.term);
            metrics.commitIndex.set(node, hardState.commit);
          }
          metrics.appliedIndex.set(node, applied);
          metrics.readySeconds.observe(node, ms / 1000);
        },
        snapshotInstalled: (index) => {
          metrics.snapshots.inc({ ...node, kind: "installed" });
          log.info({ index }, "installed snapshot from leader");
        },
        refused: (m, why) => {
          metrics.messagesRefused.inc({ ...node, kind: why.kind });
          if (refusedLogged++ % 100 === 0)
            log.warn(
              { from: m.from, type: m.type, kind: why.kind, detail: why.detail },
              "dropped a peer message",
            );
        },
        snapshotTaken: ({ index, compactTo, bytes, ms }) => {
          metrics.snapshots.inc({ ...node, kind: "taken" });
          log.info({ index, compactTo, bytes, ms: Math.round(ms) }, "took snapshot");
        },
      },
    });
  }

  start(): void {
    this.ticker = setInterval(() => this.loop.tick(), this.tickMs);
    this.ticker.unref();
    this.loop.start();
  }

  /** Stop: waits for the Ready in hand and a snapshot being written; what waits is answered. */
  async stop(): Promise<void> {
    if (this.ticker) clearInterval(this.ticker);
    await new Promise<void>((resolve) => this.loop.stop(resolve));
  }

  /** Messages from peers. */
  receive(messages: readonly Message[]): void {
    this.loop.step(messages);
  }

  /** Propose `data` and resolve with its applied result. Rejects with NotLeaderError on a follower. */
  propose(data: Uint8Array): Promise<R> {
    return new Promise<R>((resolve, reject) => this.loop.propose(data, { resolve, reject }));
  }

  proposeConfChange(cc: ConfChange): Promise<void> {
    return new Promise<void>((resolve, reject) => this.loop.proposeConfChange(cc, { resolve, reject }));
  }

  reportUnreachable(id: NodeId): void {
    this.loop.reportUnreachable(id);
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    this.loop.reportSnapshot(id, ok);
  }

  transferLeader(to: NodeId): void {
    this.loop.transferLeader(to);
  }

  /** A linearizable read point: resolves once this node has applied everything committed before the call. */
  readBarrier(timeoutMs = 5_000): Promise<void> {
    return new Promise<void>((resolve, reject) => this.loop.readBarrier(timeoutMs, { resolve, reject }));
  }

  status(): Status {
    return this.loop.status();
  }

  leader(): NodeId {
    return this.loop.leader();
  }

  isLeader(): boolean {
    return this.loop.isLeader();
  }
}
