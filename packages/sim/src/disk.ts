import type { Entry, HardState, Snapshot } from "@dispenser/raft";
import { EMPTY_CONF_STATE, EMPTY_HARD_STATE, MemoryStorage } from "@dispenser/raft";

/** One atomic write: what a Ready asks to persist, or a locally taken snapshot. */
export interface DiskWrite {
  readonly hardState?: HardState;
  /** A snapshot installed from the leader: replaces the whole log. */
  readonly installSnapshot?: Snapshot;
  /** A snapshot taken locally: compacts the log up to its index, keeping later entries. */
  readonly localSnapshot?: Snapshot;
  /** Replace stored entries from entries[0].index on. */
  readonly entries?: readonly Entry[];
}

interface Durable {
  hardState: HardState;
  snapshot: Snapshot;
  /** Contiguous, starting at snapshot.meta.index + 1. */
  entries: Entry[];
}

/**
 * A disk that distinguishes written from synced: a crash loses every write not yet synced.
 * Writes are atomic units (a LevelDB batch), applied in order at sync.
 */
export class SimDisk {
  private durable: Durable = {
    hardState: EMPTY_HARD_STATE,
    snapshot: { meta: { index: 0, term: 0, confState: EMPTY_CONF_STATE }, data: new Uint8Array() },
    entries: [],
  };
  private pending: DiskWrite[] = [];
  syncs = 0;

  write(w: DiskWrite): void {
    this.pending.push(w);
  }

  sync(): void {
    for (const w of this.pending) this.applyWrite(w);
    this.pending = [];
    this.syncs++;
  }

  hasPending(): boolean {
    return this.pending.length > 0;
  }

  crash(): void {
    this.pending = [];
  }

  private applyWrite(w: DiskWrite): void {
    const d = this.durable;
    if (w.installSnapshot) {
      d.snapshot = w.installSnapshot;
      d.entries = [];
    }
    if (w.localSnapshot && w.localSnapshot.meta.index > d.snapshot.meta.index) {
      const drop = w.localSnapshot.meta.index - d.snapshot.meta.index;
      d.entries = d.entries.slice(drop);
      d.snapshot = w.localSnapshot;
    }
    if (w.entries && w.entries.length > 0) {
      const first = w.entries[0]!.index;
      const base = d.snapshot.meta.index;
      const keep = Math.max(0, first - base - 1);
      if (keep > d.entries.length)
        throw new Error(`disk: gap appending at ${first}, last ${base + d.entries.length}`);
      d.entries = d.entries.slice(0, keep).concat(w.entries.filter((e) => e.index > base));
    }
    if (w.hardState) d.hardState = w.hardState;
  }

  /** The durable log's term at `index`, with the snapshot covering indexes at or below its own. */
  durableTerm(index: number): number | undefined {
    const d = this.durable;
    if (index === d.snapshot.meta.index) return d.snapshot.meta.term;
    if (index < d.snapshot.meta.index) return undefined;
    return d.entries[index - d.snapshot.meta.index - 1]?.term;
  }

  durableSnapshotIndex(): number {
    return this.durable.snapshot.meta.index;
  }

  durableHardState(): HardState {
    return this.durable.hardState;
  }

  /** Storage as a restarted process would load it: only what was synced. */
  load(): { storage: MemoryStorage; snapshot: Snapshot } {
    const s = new MemoryStorage();
    const d = this.durable;
    if (d.snapshot.meta.index > 0) s.applySnapshot(d.snapshot);
    s.append(d.entries);
    s.setHardState(d.hardState);
    return { storage: s, snapshot: d.snapshot };
  }
}
