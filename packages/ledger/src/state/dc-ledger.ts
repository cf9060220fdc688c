// The state of one (sequence, datacenter): the high-water mark in the DC's counter space, the
// top-most grant, an idempotency memo, the reserved windows and the stats.
//
// - hwm only moves down through an accepted return of the top-most grant's tail: nobody else can
//   hold ids above the returned start, so handing them out again repeats nothing and keeps ids
//   increasing. Once the top grant came back whole, the grant below it (found in the memo by its
//   fence, ending at the mark) is the top-most one. Any other returned range stays burnt and is
//   counted as waste.
// - A return names its grant by fence, which is public (ClusterStatus shows terms and indexes), so
//   it must also carry the grant's return token, a secret the leader minted into the lease and
//   answered only to the requester. A return whose token does not match, or whose grant is no
//   longer known here, is refused and changes nothing; a grant without a token (leased before
//   tokens existed) is never taken back.
// - The memo keeps the last MEMO_LIMIT request ids (leases and returns together, insertion order,
//   oldest evicted first): a retry within that horizon gets the first answer back. A retry older
//   than that is treated as new: a lease gets a fresh (disjoint) grant, a return is counted as waste.
// - Windows keep the last WINDOW_LIMIT grants of kind "window"; a pool may only carve inside them,
//   so evicting an old one can only make the pool refuse, never repeat.

import type { Fence, LeaseKind } from "./commands.js";
import { RETURN_TOKEN_PATTERN } from "./commands.js";
import type { Json } from "./json.js";
import {
  bigJson,
  DecodeError,
  readArray,
  readBigint,
  readBool,
  readInt,
  readObject,
  readString,
} from "./json.js";
import type { Result } from "./result.js";
import { fail, ok } from "./result.js";

/**
 * Request ids remembered per (sequence, dc). A retry comes within its client's deadline (seconds),
 * in which an edge leases a few times at most: 128 is room for dozens of edges. A retry older
 * than that gets a fresh grant (waste, never a repeat). Each entry costs about 230 bytes of heap
 * and 100 of snapshot: the memo is most of a busy ledger's state.
 */
export const MEMO_LIMIT = 128;
export const WINDOW_LIMIT = 64;

export interface GrantRecord {
  /** Counter range [start, end) in the DC's counter space. */
  readonly start: bigint;
  readonly end: bigint;
  readonly fence: Fence;
  readonly kind: LeaseKind;
  readonly requestId: string;
  /** The secret a return of this grant must present; "" for grants that cannot be returned. */
  readonly returnToken: string;
}

export interface WindowRecord {
  readonly start: bigint;
  readonly end: bigint;
  readonly fence: Fence;
  readonly requestId: string;
}

export interface DcStats {
  /** Counter values granted, including ranges later returned. */
  readonly granted: bigint;
  /** Counter values taken back by accepted returns. */
  readonly returned: bigint;
  /** Counter values returned but not taken back: burnt for good. */
  readonly waste: bigint;
  /** Grants made (replays not counted). */
  readonly grants: bigint;
}

export interface LeaseAnswer {
  readonly grant: GrantRecord;
  readonly replayed: boolean;
  /** The grant is shorter than asked for: the DC's space ran out. */
  readonly capped: boolean;
}

export interface ReturnAnswer {
  readonly accepted: boolean;
  readonly replayed: boolean;
  readonly message: string;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

type Memo =
  | { op: "lease"; size: bigint; kind: LeaseKind; start: bigint; end: bigint; fence: Fence; token: string }
  | { op: "return"; start: bigint; end: bigint; fence: Fence; accepted: boolean; message: string };

const sameFence = (a: Fence, b: Fence): boolean => a.term === b.term && a.index === b.index;
const min = (a: bigint, b: bigint): bigint => (a < b ? a : b);

export class DcLedger {
  private hwmValue = 0n;
  private topGrant: Mutable<GrantRecord> | undefined;
  /** Created at the first lease: most DCs of a deleted name never need one (a Map costs ~200 bytes). */
  private memo: Map<string, Memo> | undefined;
  private windowList: Mutable<WindowRecord>[] = [];
  private readonly counts: Mutable<DcStats> = { granted: 0n, returned: 0n, waste: 0n, grants: 0n };

  /** Everything below it in this DC's counter space has been granted. */
  get hwm(): bigint {
    return this.hwmValue;
  }

  get top(): GrantRecord | undefined {
    return this.topGrant && { ...this.topGrant };
  }

  get windows(): readonly WindowRecord[] {
    return this.windowList.map((w) => ({ ...w }));
  }

  get stats(): DcStats {
    return { ...this.counts };
  }

  lease(
    req: {
      readonly size: bigint;
      readonly requestId: string;
      readonly kind: LeaseKind;
      readonly returnToken: string;
    },
    limits: { readonly maxSegmentSize: bigint; readonly capacity: bigint },
    at: Fence,
    label: string,
  ): Result<LeaseAnswer> {
    const { size, requestId, kind, returnToken } = req;
    const seen = this.memo?.get(requestId);
    if (seen) {
      if (seen.op !== "lease" || seen.size !== size || seen.kind !== kind) {
        return fail(
          "failed-precondition",
          `requestId "${requestId}" was already used on ${label} for a different request`,
        );
      }
      if (seen.end === seen.start) {
        return fail(
          "failed-precondition",
          `the grant of request "${requestId}" on ${label} was returned in full`,
        );
      }
      const grant = {
        start: seen.start,
        end: seen.end,
        fence: seen.fence,
        kind,
        requestId,
        returnToken: seen.token,
      };
      return ok({ grant, replayed: true, capped: seen.end - seen.start < size });
    }
    if (size > limits.maxSegmentSize) {
      return fail(
        "invalid-argument",
        `size ${size} exceeds limits.maxSegmentSize ${limits.maxSegmentSize} of ${label}`,
      );
    }
    const remaining = limits.capacity - this.hwmValue;
    if (remaining <= 0n) {
      return fail(
        "exhausted",
        `${label} is exhausted: all ${limits.capacity} ids of this datacenter have been granted`,
      );
    }
    const start = this.hwmValue;
    const end = start + min(size, remaining);
    const fence = { term: at.term, index: at.index };
    this.hwmValue = end;
    this.topGrant = { start, end, fence, kind, requestId, returnToken };
    this.remember(requestId, { op: "lease", size, kind, start, end, fence, token: returnToken });
    if (kind === "window") {
      this.windowList.push({ start, end, fence, requestId });
      if (this.windowList.length > WINDOW_LIMIT) this.windowList.shift();
    }
    this.counts.granted += end - start;
    this.counts.grants += 1n;
    return ok({
      grant: { start, end, fence, kind, requestId, returnToken },
      replayed: false,
      capped: end - start < size,
    });
  }

  giveBack(
    req: {
      readonly start: bigint;
      readonly end: bigint;
      readonly fence: Fence;
      readonly requestId: string;
      readonly returnToken: string;
    },
    label: string,
  ): Result<ReturnAnswer> {
    const { start, end, fence, requestId, returnToken } = req;
    const range = `[${start}, ${end})`;
    const seen = this.memo?.get(requestId);
    if (seen) {
      if (seen.op !== "return" || seen.start !== start || seen.end !== end || !sameFence(seen.fence, fence)) {
        return fail(
          "failed-precondition",
          `requestId "${requestId}" was already used on ${label} for a different request`,
        );
      }
      return ok({ accepted: seen.accepted, replayed: true, message: seen.message });
    }
    if (end > this.hwmValue) {
      return fail(
        "failed-precondition",
        `range ${range} reaches above the high-water mark ${this.hwmValue} of ${label}: it was never granted`,
      );
    }
    // Only the holder of the grant may give any of it back: its token, not its public fence, says so.
    const held =
      this.topGrant && sameFence(this.topGrant.fence, fence) ? this.topGrant : this.leaseByFence(fence);
    if (!held) {
      return fail(
        "failed-precondition",
        `no grant with fence ${fence.term}/${fence.index} is known on ${label}: range ${range} is not taken back`,
      );
    }
    if (start < held.start || end > held.end) {
      return fail(
        "failed-precondition",
        `range ${range} is not inside the grant with fence ${fence.term}/${fence.index} ` +
          `([${held.start}, ${held.end})) on ${label}`,
      );
    }
    if (held.returnToken === "" || held.returnToken !== returnToken) {
      return fail(
        "failed-precondition",
        `the return token does not match the grant with fence ${fence.term}/${fence.index} on ${label}: ` +
          `only the holder of a grant can return it`,
      );
    }
    let top = this.topGrant;
    // The top grant came back whole: the grant just below it (if it ends at the mark and is still
    // in the memo) is now the top-most one, so an edge returning its current and its prefetched
    // segment, highest first, gets both back.
    if (top && top.end === top.start && !sameFence(top.fence, fence)) {
      const below = this.leaseByFence(fence);
      if (below && below.end === this.hwmValue) top = this.topGrant = below;
    }
    let why: string | undefined;
    if (!top || !sameFence(top.fence, fence)) why = "its fence is not the top-most grant's";
    else if (end !== this.hwmValue) why = `it does not end at the high-water mark ${this.hwmValue}`;

    let message: string;
    if (top && why === undefined) {
      this.takeBack(top, start);
      this.counts.returned += end - start;
      message = `range ${range} of ${label} taken back: the high-water mark is now ${start}`;
    } else {
      this.counts.waste += end - start;
      message = `range ${range} of ${label} recorded as waste: ${why}`;
    }
    const accepted = why === undefined;
    this.remember(requestId, { op: "return", start, end, fence, accepted, message });
    return ok({ accepted, replayed: false, message });
  }

  /** The memo's lease with this fence, as a grant record; undefined once evicted. */
  private leaseByFence(fence: Fence): Mutable<GrantRecord> | undefined {
    for (const [requestId, m] of this.memo ?? []) {
      if (m.op === "lease" && sameFence(m.fence, fence)) {
        return { start: m.start, end: m.end, fence: m.fence, kind: m.kind, requestId, returnToken: m.token };
      }
    }
    return undefined;
  }

  /** Lowers hwm to `start` and trims the top grant, its memo entry and its window to match. */
  private takeBack(top: Mutable<GrantRecord>, start: bigint): void {
    this.hwmValue = start;
    top.end = start;
    const m = this.memo?.get(top.requestId);
    if (m?.op === "lease" && sameFence(m.fence, top.fence)) m.end = start;
    for (let i = this.windowList.length - 1; i >= 0; i--) {
      const w = this.windowList[i];
      if (!w || !sameFence(w.fence, top.fence)) continue;
      w.end = start;
      if (w.end <= w.start) this.windowList.splice(i, 1);
      break;
    }
  }

  /**
   * Raises the mark to `to` if it is below (an operator's RaiseMark). The top grant is no longer
   * top-most: a return of its tail can no longer end at the mark, so it is recorded as waste.
   */
  raise(to: bigint): boolean {
    if (to <= this.hwmValue) return false;
    this.counts.waste += to - this.hwmValue;
    this.hwmValue = to;
    this.topGrant = undefined;
    return true;
  }

  /**
   * What a deleted name keeps of a DC: its mark alone, so a re-created name resumes above it. The
   * grants, memo, windows and stats go (a deleted name must cost little: they are kept forever).
   */
  static kept(hwm: bigint): DcLedger {
    const d = new DcLedger();
    d.hwmValue = hwm;
    return d;
  }

  private remember(requestId: string, m: Memo): void {
    this.memo ??= new Map();
    this.memo.set(requestId, m);
    if (this.memo.size > MEMO_LIMIT) {
      const oldest = this.memo.keys().next();
      if (!oldest.done) this.memo.delete(oldest.value);
    }
  }

  /**
   * `marksOnly`: the mark and stats, no grants, memo or windows (a backup: it must carry no return
   * token, and a restored cluster must not find old fences when it looks a grant up by fence).
   */
  toJson(marksOnly = false): Json {
    const t = marksOnly ? undefined : this.topGrant;
    return {
      hwm: bigJson(this.hwmValue),
      top: t
        ? [bigJson(t.start), bigJson(t.end), t.fence.term, t.fence.index, t.kind, t.requestId, t.returnToken]
        : null,
      memo: [...(marksOnly ? [] : (this.memo ?? []))].map(([id, m]): Json =>
        m.op === "lease"
          ? [
              "lease",
              id,
              bigJson(m.size),
              m.kind,
              bigJson(m.start),
              bigJson(m.end),
              m.fence.term,
              m.fence.index,
              m.token,
            ]
          : [
              "return",
              id,
              bigJson(m.start),
              bigJson(m.end),
              m.fence.term,
              m.fence.index,
              m.accepted,
              m.message,
            ],
      ),
      windows: (marksOnly ? [] : this.windowList).map((w) => [
        bigJson(w.start),
        bigJson(w.end),
        w.fence.term,
        w.fence.index,
        w.requestId,
      ]),
      stats: {
        granted: bigJson(this.counts.granted),
        returned: bigJson(this.counts.returned),
        waste: bigJson(this.counts.waste),
        grants: bigJson(this.counts.grants),
      },
    };
  }

  /** `format` 1 snapshots were written before return tokens: their grants get none. */
  static fromJson(v: unknown, path: string, format: number): DcLedger {
    const o = readObject(v, path, ["hwm", "top", "memo", "windows", "stats"]);
    const d = new DcLedger();
    const tokens = format >= 2;
    d.hwmValue = readBigint(o["hwm"], `${path}.hwm`);
    if (o["top"] !== null) {
      const t = tuple(o["top"], `${path}.top`, tokens ? 7 : 6);
      d.topGrant = {
        start: big(t, 0),
        end: big(t, 1),
        fence: fence(t, 2),
        kind: kind(t, 4),
        requestId: text(t, 5),
        returnToken: tokens ? token(t, 6) : "",
      };
    }
    for (const [i, item] of readArray(o["memo"], `${path}.memo`, MEMO_LIMIT).entries()) {
      const p = `${path}.memo[${i}]`;
      const op = readArray(item, p, 9)[0];
      const t = tuple(item, p, op === "lease" && tokens ? 9 : 8);
      const m: Memo =
        op === "lease"
          ? {
              op,
              size: big(t, 2),
              kind: kind(t, 3),
              start: big(t, 4),
              end: big(t, 5),
              fence: fence(t, 6),
              token: tokens ? token(t, 8) : "",
            }
          : op === "return"
            ? {
                op,
                start: big(t, 2),
                end: big(t, 3),
                fence: fence(t, 4),
                accepted: readBool(t.at(6), `${p}[6]`),
                message: text(t, 7),
              }
            : badOp(p);
      (d.memo ??= new Map()).set(text(t, 1), m);
    }
    for (const [i, item] of readArray(o["windows"], `${path}.windows`, WINDOW_LIMIT).entries()) {
      const t = tuple(item, `${path}.windows[${i}]`, 5);
      d.windowList.push({ start: big(t, 0), end: big(t, 1), fence: fence(t, 2), requestId: text(t, 4) });
    }
    const s = readObject(o["stats"], `${path}.stats`, ["granted", "returned", "waste", "grants"]);
    for (const k of ["granted", "returned", "waste", "grants"] as const)
      d.counts[k] = readBigint(s[k], `${path}.stats.${k}`);
    return d;
  }
}

interface Tuple {
  readonly items: readonly unknown[];
  readonly path: string;
  at(i: number): unknown;
}

function tuple(v: unknown, path: string, n: number): Tuple {
  const items = readArray(v, path, n);
  if (items.length !== n) throw new DecodeError(`${path} must have ${n} items`);
  return { items, path, at: (i) => items[i] };
}

const big = (t: Tuple, i: number): bigint => readBigint(t.at(i), `${t.path}[${i}]`);
const text = (t: Tuple, i: number): string => readString(t.at(i), `${t.path}[${i}]`, 4096);
const token = (t: Tuple, i: number): string => {
  const s = readString(t.at(i), `${t.path}[${i}]`, 32);
  if (!RETURN_TOKEN_PATTERN.test(s)) throw new DecodeError(`${t.path}[${i}] is not a return token`);
  return s;
};
const fence = (t: Tuple, i: number): Fence => ({
  term: readInt(t.at(i), `${t.path}[${i}]`),
  index: readInt(t.at(i + 1), `${t.path}[${i + 1}]`),
});

function kind(t: Tuple, i: number): LeaseKind {
  const k = t.at(i);
  if (k !== "segment" && k !== "window")
    throw new DecodeError(`${t.path}[${i}] must be "segment" or "window"`);
  return k;
}

function badOp(path: string): never {
  throw new DecodeError(`${path}[0] must be "lease" or "return"`);
}
