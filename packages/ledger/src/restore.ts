// `dispenser ledger restore`: a node's empty data directory, started from a backup instead of
// from nothing. Every node of the new cluster is restored from the same file with the same
// members, so they all begin with the same snapshot (index 1, as a bootstrap) and agree from the
// first election on. The cluster keeps the backup's identity, and starts on hold: it does not know
// the ids issued after the backup, so a (sequence, dc) leases nothing until RaiseMark named it (or
// ReleaseRestore ends the hold). Edges also refuse grants below what they already held.
import type { NodeId } from "@dispenser/raft";
import { appSnapshot } from "./ledger-app.js";
import { LedgerState } from "./state/ledger-state.js";
import { LevelStorage } from "./storage/level-storage.js";

export interface RestoreOptions {
  readonly dataDir: string;
  readonly clusterId: string;
  readonly nodeId: NodeId;
  /** The voters of the restored cluster (every node restored with the same list). */
  readonly voters: readonly NodeId[];
  /** The state as `Backup` answered it (a LedgerState snapshot). */
  readonly backup: Uint8Array;
}

export interface RestoreSummary {
  readonly identity: string;
  readonly revision: bigint;
  readonly sequences: number;
}

/** Throws if the backup is not a valid state or the data directory is not empty. */
export async function restoreDataDir(o: RestoreOptions): Promise<RestoreSummary> {
  const state = LedgerState.restore(o.backup); // checks every field; throws on a corrupt file
  state.holdAfterRestore();
  if (!o.voters.includes(o.nodeId)) throw new Error(`the members must include this node (${o.nodeId})`);
  const storage = await LevelStorage.open(o.dataDir, { clusterId: o.clusterId, nodeId: o.nodeId });
  try {
    if (!storage.wasEmpty) {
      throw new Error(
        `data directory ${o.dataDir} is not empty: restore into an empty one (move the old one away first)`,
      );
    }
    const voters = [...o.voters].sort((a, b) => a - b);
    await storage.bootstrap(
      {
        meta: { index: 1, term: 1, confState: { voters, learners: [] } },
        data: appSnapshot(state.snapshot(), []),
      },
      { term: 1, vote: 0, commit: 1 },
    );
  } finally {
    await storage.close();
  }
  const c = state.counts;
  return { identity: state.identity, revision: state.revision, sequences: c.live + c.deleted };
}
