import type { Storage } from "./storage.js";
import type { NodeId } from "./types.js";

/** Randomness for election jitter, injected so a seed reproduces a whole run. */
export interface Rand {
  /** A uniformly distributed integer in [0, n). */
  intn(n: number): number;
}

/** Where the core reports notable transitions. No I/O of its own: the caller decides. */
export interface RaftLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
}

export const silentLogger: RaftLogger = { info: () => {}, warn: () => {} };

/**
 * Milliseconds per tick where the host does not say: with the ledger's 10 election ticks and a
 * heartbeat every tick, an election after 0.5 to 1 s without a leader. The simulator's clock is
 * built on it too.
 */
export const DEFAULT_TICK_MS = 50;

export interface RaftOptions {
  /** This node's id, > 0. */
  id: NodeId;
  /** Durable state, read-only to the core (see `Storage`). */
  storage: Storage;
  /**
   * Ticks a follower waits without hearing from a leader before campaigning; the actual timeout
   * is drawn from [electionTicks, 2 * electionTicks). Advice: 10 * heartbeatTicks.
   */
  electionTicks: number;
  /** Ticks between leader heartbeats. Must be < electionTicks. */
  heartbeatTicks: number;
  /** Election jitter. */
  rand: Rand;
  /**
   * Index the application has already applied (it restarts from there). Default: the snapshot
   * index. When it is beyond the snapshot, `storage.initialState().confState` must be the
   * configuration as of this index: conf changes up to it are not applied again.
   */
  appliedIndex?: number;
  /** Most bytes of entries in one append message. Default 1 MiB. */
  maxMsgBytes?: number;
  /** Most append messages in flight to one follower in replicate state. Default 256. */
  maxInflightMsgs?: number;
  /** Most bytes of entries in flight to one follower; 0 for no byte limit. Default 0. */
  maxInflightBytes?: number;
  /** Most bytes of proposed but uncommitted entries on a leader; 0 for no limit. Default 64 MiB. */
  maxUncommittedBytes?: number;
  /** Most bytes of committed entries handed out in one Ready. Default 4 MiB. */
  maxApplyBytes?: number;
  /** Most ReadIndex requests waiting on a leader. Default 4096. */
  maxPendingReads?: number;
  /** Leader steps down when it has not heard from a quorum for an election timeout. Default true. */
  checkQuorum?: boolean;
  /** Run a pre-vote round before bumping the term, so a rejoining node cannot disrupt. Default true. */
  preVote?: boolean;
  logger?: RaftLogger;
}

export type ResolvedRaftOptions = Required<Omit<RaftOptions, "appliedIndex">> & {
  appliedIndex: number | undefined;
};

/** Apply defaults and check every option once, here. Throws on an invalid configuration. */
export function resolveOptions(o: RaftOptions): ResolvedRaftOptions {
  const r: ResolvedRaftOptions = {
    maxMsgBytes: 1 << 20,
    maxInflightMsgs: 256,
    maxInflightBytes: 0,
    maxUncommittedBytes: 64 << 20,
    maxApplyBytes: 4 << 20,
    maxPendingReads: 4096,
    checkQuorum: true,
    preVote: true,
    logger: silentLogger,
    ...o,
    appliedIndex: o.appliedIndex,
  };
  const int = (name: string, v: number, min: number): void => {
    if (!Number.isSafeInteger(v) || v < min)
      throw new Error(`raft option ${name} must be an integer >= ${min}, got ${v}`);
  };
  int("id", r.id, 1);
  int("heartbeatTicks", r.heartbeatTicks, 1);
  int("electionTicks", r.electionTicks, 2);
  if (r.electionTicks <= r.heartbeatTicks)
    throw new Error("raft option electionTicks must be greater than heartbeatTicks");
  int("maxMsgBytes", r.maxMsgBytes, 1);
  int("maxInflightMsgs", r.maxInflightMsgs, 1);
  int("maxInflightBytes", r.maxInflightBytes, 0);
  int("maxUncommittedBytes", r.maxUncommittedBytes, 0);
  int("maxApplyBytes", r.maxApplyBytes, 1);
  int("maxPendingReads", r.maxPendingReads, 1);
  if (r.appliedIndex !== undefined) int("appliedIndex", r.appliedIndex, 0);
  return r;
}
