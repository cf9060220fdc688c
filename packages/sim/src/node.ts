import type { NodeId, ReadyLoop } from "@dispenser/raft";
import type { Grant } from "./allocator.js";
import type { SimApp } from "./apps.js";
import type { SimDisk } from "./disk.js";
import type { SimStorage } from "./sim-storage.js";

/** What the replicated application answers a proposal with: the range it granted, if any. */
export type SimOut = { key: string; grant: Grant } | undefined;

/** A client's request for `size` ids in `key`'s space; a retry reuses the object. */
export interface ClientRequest {
  readonly key: string;
  readonly requestId: number;
  readonly size: number;
  /** The highest end acknowledged in `key`'s space when the request was first sent. */
  readonly ackedEndAtPropose: number;
}

/** One simulated server: the Ready loop (production's) on a simulated disk, and its application. */
export class SimNode {
  /** Bumped on every restart, so events addressed to a dead incarnation are ignored. */
  incarnation = 0;
  up = false;
  /** Taken out of the cluster by a committed removal: never restarted. */
  decommissioned = false;
  loop!: ReadyLoop<SimOut, undefined>;
  storage!: SimStorage;
  sm!: SimApp;
  /** The application's total mark after the last entry applied (the checkers compare it). */
  markApplied = 0;
  /** Highest commit index already checked for durability while leader. */
  checkedCommit = 0;
  /** Voters as of the previous observation (a conf change may apply between two). */
  prevVoters: readonly NodeId[] = [];
  /** Term in which this node was last seen as leader (to check completeness once per term). */
  leaderTermSeen = 0;
  /** Local snapshots are taken every this many applied entries. */
  readonly snapshotEvery: number;
  crashes = 0;

  constructor(
    readonly id: NodeId,
    readonly disk: SimDisk,
    snapshotEvery: number,
  ) {
    this.snapshotEvery = snapshotEvery;
  }
}
