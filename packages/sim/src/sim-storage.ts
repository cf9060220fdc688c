import type {
  ConfState,
  Done,
  HardState,
  LoopStorage,
  MemoryStorage,
  Ready,
  Snapshot,
} from "@dispenser/raft";
import type { SimDisk } from "./disk.js";

/**
 * The simulator's LevelStorage: writes go to a disk that loses what is not synced at a crash, and
 * complete (synced, then visible to the core) after a delay the simulation draws, as an fsync
 * would. Snapshot data needs no staging: the disk keeps it whole.
 */
export class SimStorage implements LoopStorage<undefined> {
  private hard: HardState | undefined;

  constructor(
    readonly mem: MemoryStorage,
    private readonly disk: SimDisk,
    /** Run `k` once a write has had time to sync. */
    private readonly later: (k: () => void) => void,
    /** A Ready's write is synced: the checkers look at its entries. */
    private readonly onSynced: (rd: Ready) => void,
  ) {}

  firstIndex(): number {
    return this.mem.firstIndex();
  }

  lastIndex(): number {
    return this.mem.lastIndex();
  }

  snapshot(): Snapshot {
    return this.mem.snapshot();
  }

  keepHardState(hs: HardState): void {
    this.hard = hs;
  }

  persist(rd: Ready, done: Done): void {
    const hs = rd.hardState ?? this.hard;
    this.disk.write({
      ...(hs ? { hardState: hs } : {}),
      ...(rd.snapshot ? { installSnapshot: rd.snapshot } : {}),
      ...(rd.entries.length > 0 ? { entries: rd.entries } : {}),
    });
    this.later(() => {
      this.disk.sync();
      if (rd.snapshot) this.mem.applySnapshot(rd.snapshot);
      if (rd.entries.length > 0) this.mem.append(rd.entries);
      if (hs) {
        this.mem.setHardState(hs);
        this.hard = undefined;
      }
      this.onSynced(rd);
      done();
    });
  }

  stageSnapshot(_data: Uint8Array, done: Done<undefined>): void {
    this.later(() => done());
  }

  dropStaged(_staged: undefined, done: Done): void {
    done();
  }

  saveSnapshot(
    index: number,
    confState: ConfState,
    data: Uint8Array,
    _staged: undefined,
    compactTo: number,
    done: Done,
  ): void {
    const snap: Snapshot = { meta: { index, term: this.mem.term(index), confState }, data };
    // The stored commit index must not fall below the snapshot's: it goes in the same write.
    const hs = this.hard;
    this.disk.write({ localSnapshot: snap, ...(hs ? { hardState: hs } : {}) });
    this.later(() => {
      this.disk.sync();
      if (hs) this.hard = undefined;
      const first = this.mem.firstIndex();
      this.mem.createSnapshot(index, confState, data);
      if (compactTo > first) this.mem.compact(Math.min(compactTo, index));
      done();
    });
  }
}
