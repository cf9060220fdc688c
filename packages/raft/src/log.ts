import { assert, isStorageError } from "./errors.js";
import type { Storage } from "./storage.js";
import { limitSize } from "./storage.js";
import type { Entry, Snapshot } from "./types.js";

/**
 * Entries (and at most one snapshot) the core has accepted but the application has not yet
 * persisted. `offset` is the index of `entries[0]`.
 */
class Unstable {
  snapshot: Snapshot | undefined;
  entries: Entry[] = [];
  constructor(public offset: number) {}

  maybeFirstIndex(): number | undefined {
    return this.snapshot ? this.snapshot.meta.index + 1 : undefined;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot?.meta.index;
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot && this.snapshot.meta.index === i) return this.snapshot.meta.term;
      return undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || i > last) return undefined;
    return this.entries[i - this.offset]!.term;
  }

  /** The entries up to (index, term) are now durable. Ignored if they were replaced meanwhile. */
  stableTo(index: number, term: number): void {
    const t = this.maybeTerm(index);
    if (t === undefined || t !== term || index < this.offset) return;
    this.entries = this.entries.slice(index + 1 - this.offset);
    this.offset = index + 1;
  }

  stableSnapTo(index: number): void {
    if (this.snapshot && this.snapshot.meta.index === index) this.snapshot = undefined;
  }

  restore(s: Snapshot): void {
    this.offset = s.meta.index + 1;
    this.entries = [];
    this.snapshot = s;
  }

  truncateAndAppend(ents: readonly Entry[]): void {
    const from = ents[0]!.index;
    if (from === this.offset + this.entries.length) {
      this.entries = this.entries.concat(ents);
    } else if (from <= this.offset) {
      // Replace everything unstable; the application truncates its durable log at `from`.
      this.offset = from;
      this.entries = ents.slice();
    } else {
      this.entries = this.entries.slice(0, from - this.offset).concat(ents);
    }
  }

  slice(lo: number, hi: number): Entry[] {
    assert(
      lo >= this.offset && hi <= this.offset + this.entries.length,
      () => `unstable.slice[${lo},${hi}) out of bound [${this.offset},${this.offset + this.entries.length}]`,
    );
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

/** The log as the core sees it: durable storage plus the unstable tail. */
export class RaftLog {
  readonly unstable: Unstable;
  /** Highest index known to be committed (on a quorum's durable storage). */
  committed: number;
  /** Highest index the application has applied. */
  applied: number;

  constructor(
    readonly storage: Storage,
    /** Most bytes of committed entries handed out in one Ready (paginated apply). */
    readonly maxApplyBytes: number,
  ) {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    this.committed = first - 1;
    this.applied = first - 1;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  lastTerm(): number {
    const t = this.term(this.lastIndex());
    assert(t !== undefined, "unexpected error when getting the last term");
    return t;
  }

  /** The term of entry `i`, or undefined when it is compacted or beyond the log. */
  term(i: number): number | undefined {
    const dummy = this.firstIndex() - 1;
    if (i < dummy || i > this.lastIndex()) return undefined;
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    try {
      return this.storage.term(i);
    } catch (e) {
      if (isStorageError(e, "compacted") || isStorageError(e, "unavailable")) return undefined;
      throw e;
    }
  }

  matchTerm(i: number, term: number): boolean {
    return this.term(i) === term;
  }

  /**
   * Append entries following (index, logTerm) if the logs match there. Returns the index of the
   * last entry this message verified, or undefined on mismatch. Only a real conflict truncates:
   * a stale append carrying a prefix of what we have deletes nothing.
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: readonly Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      assert(
        ci > this.committed,
        () => `entry ${ci} conflicts with committed entry [committed(${this.committed})]`,
      );
      this.append(ents.slice(ci - (index + 1)));
    }
    // Commit only what this message proved we share with the leader.
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1;
    assert(after >= this.committed, () => `after(${after}) is out of range [committed(${this.committed})]`);
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /** Index of the first entry that is new or conflicts with ours; 0 if all are already present. */
  findConflict(ents: readonly Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * The largest index ≤ `index` whose term is ≤ `term`, with its term: used to skip a whole term of
   * conflicting entries per round trip (fast backtracking).
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (let i = index; ; i--) {
      const t = this.term(i);
      if (t === undefined) return { index: i, term: 0 };
      if (t <= term) return { index: i, term: t };
    }
  }

  commitTo(toCommit: number): void {
    if (this.committed < toCommit) {
      assert(
        this.lastIndex() >= toCommit,
        () => `tocommit(${toCommit}) is out of range [lastIndex(${this.lastIndex()})]`,
      );
      this.committed = toCommit;
    }
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    assert(
      this.committed >= i && i >= this.applied,
      () => `applied(${i}) is out of range [prevApplied(${this.applied}), committed(${this.committed})]`,
    );
    this.applied = i;
  }

  /** Entries the application should persist next. */
  unstableEntries(): Entry[] {
    return this.unstable.entries.slice();
  }

  /** Committed entries not yet applied, bounded by `maxApplyBytes`. */
  nextCommittedEntries(): Entry[] {
    const off = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed + 1 > off) return this.slice(off, this.committed + 1, this.maxApplyBytes);
    return [];
  }

  hasNextCommittedEntries(): boolean {
    const off = Math.max(this.applied + 1, this.firstIndex());
    return this.committed + 1 > off;
  }

  /** Entries from `i` to the end, up to `maxBytes`; undefined when `i` is compacted. */
  entriesFrom(i: number, maxBytes: number): Entry[] | undefined {
    if (i > this.lastIndex()) return [];
    if (i < this.firstIndex()) return undefined;
    return this.slice(i, this.lastIndex() + 1, maxBytes);
  }

  allEntries(): Entry[] {
    return this.slice(this.firstIndex(), this.lastIndex() + 1, Number.POSITIVE_INFINITY);
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** Is a log ending at (lastIndex, term) at least as up-to-date as ours (§5.4.1)? */
  isUpToDate(lastIndex: number, term: number): boolean {
    const ourTerm = this.lastTerm();
    return term > ourTerm || (term === ourTerm && lastIndex >= this.lastIndex());
  }

  maybeCommit(maxIndex: number, term: number): boolean {
    // Only entries of the leader's own term are committed by counting (§5.4.2, figure 8).
    if (maxIndex > this.committed && this.term(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  restore(s: Snapshot): void {
    this.committed = s.meta.index;
    this.unstable.restore(s);
  }

  stableTo(index: number, term: number): void {
    this.unstable.stableTo(index, term);
  }

  stableSnapTo(index: number): void {
    this.unstable.stableSnapTo(index);
  }

  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    assert(lo <= hi, () => `invalid slice ${lo} > ${hi}`);
    assert(
      lo >= this.firstIndex() && hi <= this.lastIndex() + 1,
      () => `slice[${lo},${hi}) out of bound [${this.firstIndex()},${this.lastIndex()}]`,
    );
    if (lo === hi) return [];
    let ents: Entry[] = [];
    const uoff = this.unstable.offset;
    if (lo < uoff) {
      ents = this.storage.entries(lo, Math.min(hi, uoff), maxBytes);
      // Storage stopped early because of the size limit: do not add unstable entries after a gap.
      if (ents.length < Math.min(hi, uoff) - lo) return ents;
    }
    if (hi > uoff) {
      const u = this.unstable.slice(Math.max(lo, uoff), hi);
      ents = ents.length > 0 ? ents.concat(u) : u;
    }
    return limitSize(ents, maxBytes);
  }
}
