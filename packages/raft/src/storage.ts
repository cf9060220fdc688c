import { assert, errCompacted, errSnapOutOfDate, errUnavailable } from "./errors.js";
import type { ConfState, Entry, HardState, Snapshot } from "./types.js";
import { EMPTY_CONF_STATE, EMPTY_HARD_STATE, entryBytes } from "./types.js";

/**
 * What the core reads of the durable state. The core never writes through this interface: the
 * application persists what a `Ready` hands it, then makes it visible here, before `advance()`.
 *
 * Contract:
 * - `firstIndex()` is the index of the first entry still available (snapshot index + 1);
 *   `lastIndex()` the index of the last entry (the snapshot index when the log is empty).
 * - `term(i)` answers for `firstIndex() - 1 <= i <= lastIndex()` (the term of the snapshot for
 *   `firstIndex() - 1`); throws `StorageError("compacted")` below and `("unavailable")` above.
 * - `entries(lo, hi, maxBytes)` returns entries `[lo, hi)`, at least one if any, and stops before the
 *   entry that would take the total above `maxBytes`; throws `compacted` if `lo < firstIndex()`,
 *   `unavailable` if `hi > lastIndex() + 1`.
 * - `snapshot()` returns the most recent snapshot; may throw `snapshot-temporarily-unavailable`, in
 *   which case the core retries later.
 * - `initialState().confState` is the configuration as of the index the application restarts
 *   from (`RaftOptions.appliedIndex`, else the snapshot index).
 * - Everything returned is durable: it was synced before the application made it visible.
 */
export interface Storage {
  initialState(): { hardState: HardState; confState: ConfState };
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  term(index: number): number;
  firstIndex(): number;
  lastIndex(): number;
  snapshot(): Snapshot;
}

/** Entries of `ents` up to `maxBytes` in total, always at least one. */
export function limitSize(ents: Entry[], maxBytes: number): Entry[] {
  if (ents.length === 0) return ents;
  let size = entryBytes(ents[0]!);
  let n = 1;
  for (; n < ents.length; n++) {
    size += entryBytes(ents[n]!);
    if (size > maxBytes) break;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}

/**
 * Storage held in memory: the embedded default, and the state kept behind a durable store.
 * `ents[0]` is a dummy entry carrying the snapshot's index and term.
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = EMPTY_HARD_STATE;
  private snap: Snapshot = {
    meta: { index: 0, term: 0, confState: EMPTY_CONF_STATE },
    data: new Uint8Array(),
  };
  private ents: Entry[] = [{ index: 0, term: 0, type: 0, data: new Uint8Array() }];

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardState, confState: this.snap.meta.confState };
  }

  setHardState(hs: HardState): void {
    this.hardState = hs;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.ents[0]!.index;
    if (lo <= offset) throw errCompacted();
    if (hi > this.lastIndex() + 1) throw errUnavailable();
    assert(lo <= hi, () => `entries: lo ${lo} > hi ${hi}`);
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxBytes);
  }

  term(index: number): number {
    const offset = this.ents[0]!.index;
    if (index < offset) throw errCompacted();
    if (index - offset >= this.ents.length) throw errUnavailable();
    return this.ents[index - offset]!.term;
  }

  firstIndex(): number {
    return this.ents[0]!.index + 1;
  }

  lastIndex(): number {
    return this.ents[0]!.index + this.ents.length - 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replace everything with `snap` (installing a leader's snapshot, or loading one at start). */
  applySnapshot(snap: Snapshot): void {
    if (this.snap.meta.index >= snap.meta.index) throw errSnapOutOfDate();
    this.snap = snap;
    this.ents = [{ index: snap.meta.index, term: snap.meta.term, type: 0, data: new Uint8Array() }];
  }

  /** Record a snapshot taken by the application at `index` (≤ applied), then compact up to it. */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    if (index <= this.snap.meta.index) throw errSnapOutOfDate();
    assert(
      index <= this.lastIndex(),
      () => `snapshot ${index} is out of bound lastindex(${this.lastIndex()})`,
    );
    this.snap = { meta: { index, term: this.term(index), confState }, data };
    return this.snap;
  }

  /** Discard entries before `compactIndex`; the entry at `compactIndex` becomes the dummy. */
  compact(compactIndex: number): void {
    const offset = this.ents[0]!.index;
    if (compactIndex <= offset) throw errCompacted();
    assert(
      compactIndex <= this.lastIndex(),
      () => `compact ${compactIndex} is out of bound lastindex(${this.lastIndex()})`,
    );
    const i = compactIndex - offset;
    const dummy = this.ents[i]!;
    this.ents = [
      { index: dummy.index, term: dummy.term, type: 0, data: new Uint8Array() },
      ...this.ents.slice(i + 1),
    ];
  }

  /** Append entries, replacing any conflicting suffix. Entries must be contiguous. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[entries.length - 1]!.index;
    if (last < first) return; // All already compacted.
    let ents = entries;
    if (first > ents[0]!.index) ents = ents.slice(first - ents[0]!.index);
    const offset = ents[0]!.index - this.ents[0]!.index;
    assert(
      offset <= this.ents.length,
      () => `missing log entry [last: ${this.lastIndex()}, append at: ${ents[0]!.index}]`,
    );
    this.ents = this.ents.slice(0, offset).concat(ents);
  }
}
