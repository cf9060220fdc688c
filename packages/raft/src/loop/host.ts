import type { Ready } from "../rawnode.js";
import type { Role } from "../raft.js";
import type { Storage } from "../storage.js";
import type { ConfState, Entry, HardState, Message, NodeId } from "../types.js";
import type { Refusal } from "../validate.js";

/**
 * How an asynchronous step ends: with the error that stopped it, or (err undefined) with its value.
 * The loop never awaits a promise: production and the simulator complete its steps, each on its own
 * clock, through these callbacks.
 */
export type Done<T = void> = (err?: unknown, value?: T) => void;

/** An answer to one request made of the loop (a proposal, a membership change, a read). */
export interface Answer<T> {
  resolve(value: T): void;
  reject(err: Error): void;
}

/**
 * The durable store the loop writes through. A write's results become visible to the core
 * (through `Storage`) only once it is synced, just before `done` is called.
 */
export interface LoopStorage<Staged> extends Pick<Storage, "firstIndex" | "lastIndex" | "snapshot"> {
  /** Take a hard state that moved only its commit index: it rides along with the next write. */
  keepHardState(hs: HardState): void;
  /** Write a Ready's snapshot, entries and hard state as one synced batch. */
  persist(rd: Ready, done: Done): void;
  /** Write a snapshot's data where nothing refers to it yet (the large write, beside the loop's). */
  stageSnapshot(data: Uint8Array, done: Done<Staged>): void;
  /** Forget a staged snapshot that will not be adopted. */
  dropStaged(staged: Staged, done: Done): void;
  /** Adopt a staged snapshot taken at `index` and compact the log up to `compactTo` (≤ index). */
  saveSnapshot(
    index: number,
    confState: ConfState,
    data: Uint8Array,
    staged: Staged,
    compactTo: number,
    done: Done,
  ): void;
}

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

/** Everything else the loop does to the world, and its clock. */
export interface LoopHost {
  /** Hand messages to the network. Never blocks; may drop (Raft retries). */
  send(messages: readonly Message[]): void;
  /** Run `k` once other work waiting now has had its turn (production: setImmediate). */
  turn(k: () => void): void;
  /** Run `k` after `ms` milliseconds unless the returned function is called first. */
  after(ms: number, k: () => void): () => void;
  /** Milliseconds on a clock that never goes back. */
  now(): number;
  /** A storage failure or a broken invariant: the node must stop. */
  fatal(err: unknown): void;
}

/** What the loop reports as it goes: metrics and logs in production, checkers in the simulator. */
export interface LoopEvents {
  /** The leader or this node's role changed (`leaderChanged`: the leader did). */
  softState?(lead: NodeId, role: Role, leaderChanged: boolean): void;
  /** A Ready's write took `ms`. */
  wrote?(ms: number): void;
  /** An entry of any kind was applied (after the application's own apply, before its answer). */
  applied?(e: Entry): void;
  /** A proposal was answered `ms` after it was made. */
  answered?(ms: number): void;
  /** A Ready was handled in `ms`; `hardState` when it changed. */
  handled?(ms: number, hardState: HardState | undefined, applied: number): void;
  snapshotInstalled?(index: number): void;
  snapshotTaken?(info: { index: number; compactTo: number; bytes: number; ms: number }): void;
  /** Inputs were taken or a Ready advanced: the core's status is consistent for an observer. */
  settled?(): void;
  /** A peer's message broke a rule and was dropped. */
  refused?(m: Message, why: Refusal): void;
}
