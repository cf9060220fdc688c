import type { MemoryStorage, Message, NodeId, Ready, RawNode } from "@dispenser/raft";
import type { SimApp } from "./apps.js";
import type { SimDisk } from "./disk.js";

/** Where a node is in the cycle of processing one Ready; a crash may strike between any two. */
export type Phase = "idle" | "syncing" | "sending" | "applying" | "advancing";

/** Inputs that arrive while a Ready is being processed wait here (no step between ready and advance). */
export type Input =
  | { kind: "msg"; m: Message }
  | { kind: "tick" }
  | { kind: "propose"; key: string; requestId: number; size: number; ackedEndAtPropose: number }
  | { kind: "read"; key: string; requestId: number; ackedEndAtStart: number }
  | { kind: "transfer"; to: NodeId }
  | { kind: "conf"; change: "add-learner" | "promote" | "remove"; target: NodeId }
  | { kind: "snap-status"; peer: NodeId; ok: boolean };

export interface PendingProposal {
  readonly term: number;
  readonly requestId: number;
  readonly key: string;
  readonly ackedEndAtPropose: number;
}

/** One simulated server: a Raft node, its disk, and the allocator it replicates. */
export class SimNode {
  /** Bumped on every restart, so events addressed to a dead incarnation are ignored. */
  incarnation = 0;
  up = false;
  /** Taken out of the cluster by a committed removal: never restarted. */
  decommissioned = false;
  phase: Phase = "idle";
  raw!: RawNode;
  storage!: MemoryStorage;
  sm!: SimApp;
  rd: Ready | undefined;
  inbox: Input[] = [];
  /** Proposals this node made as leader, by log index. */
  proposals = new Map<number, PendingProposal>();
  /** Reads waiting for their ReadState, then for the applied index to reach it. */
  reads = new Map<number, { key: string; ackedEndAtStart: number; index: number | undefined }>();
  /** Highest commit index already checked for durability while leader. */
  checkedCommit = 0;
  /** Voters as of the previous observation (a conf change may apply between two). */
  prevVoters: readonly NodeId[] = [];
  /** Term in which this node was last seen as leader (to check completeness once per term). */
  leaderTermSeen = 0;
  /** Local snapshots are taken every this many applied entries. */
  snapshotEvery: number;
  crashes = 0;

  constructor(
    readonly id: NodeId,
    readonly disk: SimDisk,
    snapshotEvery: number,
  ) {
    this.snapshotEvery = snapshotEvery;
  }
}
