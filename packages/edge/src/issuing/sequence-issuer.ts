// Issues one sequence's ids on this edge from a current and a prefetched next segment (double
// buffer). At steady load a draw never waits on the ledger: the next segment is leased when a share
// of the current one is used. Draws that find too few ids wait in a bounded FIFO queue, so ids go
// out in the order requests arrived and a batch gets exactly its count or an error that issued
// nothing.
//
// Ordering `global`: no buffer. Waiting draws are batched into one lease of exactly their total,
// committed through the ledger leader; a draw that arrives while a lease is in flight waits for the
// next one. Every id then comes from a grant committed after the draw arrived, so ids grow in
// real-time order across the whole cluster. Ordering `dc` is the same with carves of the DC's
// reserve pool for grants: real-time order across the edges of one DC.
import type { SequenceDef } from "@dispenser/domain";
import { capacity, DEFAULT_MAX_SEGMENT_SIZE, RangeSizer } from "@dispenser/domain";
import { EdgeError } from "../errors.js";
import type { SegmentGrant, SequenceInfo } from "../ledger/ledger-port.js";
import type { IdMap } from "./id-map.js";
import { Segment } from "./segment.js";
import type { StrategyParams } from "./strategy.js";
import { MIN_SEGMENT_SIZE } from "./strategy.js";

/** Leases `size` counter values for this sequence from the ledger. */
export type GrantFn = (size: bigint) => Promise<SegmentGrant>;

export interface IssuerHooks {
  /** A draw waited this long for a segment (draws served from the buffer are not reported). */
  onWaited?(seconds: number): void;
  /** A grant came with a newer revision of the sequence than this issuer's definition. */
  onNewerRevision?(revision: bigint): void;
}

export interface IssuerOptions {
  readonly info: SequenceInfo;
  readonly dc: number;
  readonly map: IdMap;
  readonly strategy: StrategyParams;
  readonly grant: GrantFn;
  readonly now: () => number;
  /** Draws allowed to wait for a segment at once; more are refused as overloaded. */
  readonly maxWaiters: number;
  /** Largest count of one draw. */
  readonly maxDraw: number;
  /** How long a draw waits for a segment when its caller names no deadline; none if unset. */
  readonly drawTimeoutMs?: number;
  readonly hooks?: IssuerHooks;
}

/** Segments held at once: current, prefetched, and room for one large batch's extra lease. */
const MAX_SEGMENTS = 4;

/** `count` ids `first, first + step, ...`: a batch from one segment of a type 2 or 3 sequence. */
export interface IdRun {
  readonly first: bigint;
  readonly step: bigint;
  readonly count: number;
}

/**
 * The ids of one draw: a run when they form one progression, else a list. A run costs the same
 * whatever its count, where a list of 10,000 ids is 10,000 bigints for the collector.
 */
export type Drawn = IdRun | bigint[];

/** The ids of a draw, listed. */
export function idsOf(d: Drawn): bigint[] {
  if (Array.isArray(d)) return d;
  const ids = new Array<bigint>(d.count);
  let id = d.first;
  for (let i = 0; i < d.count; i++, id += d.step) ids[i] = id;
  return ids;
}

interface Waiter {
  readonly n: number;
  readonly resolve: (ids: Drawn) => void;
  readonly reject: (e: EdgeError) => void;
  /** Global ordering: the lease in flight already counts this waiter. */
  inLease: boolean;
  done: boolean;
}

export class SequenceIssuer {
  readonly def: SequenceDef;
  /** The catalog revision of `def` (grants may carry newer ones: see `onNewerRevision`). */
  revision: bigint;
  private readonly segments: Segment[] = [];
  private readonly waiters: Waiter[] = [];
  /** Segment sizes adapt to the draw rate (when the strategy says so), as the SDK sizes its ranges. */
  private readonly sizer: RangeSizer;
  private readonly global: boolean;
  private fetching = false;
  /** Settles when the lease in flight (if any) has been answered. */
  private inFlight: Promise<void> = Promise.resolve();
  /** The ledger said the DC's space is used up: nothing more will come. */
  private exhausted = false;
  private capacityLeft: bigint;
  /** The end of the highest segment issued to its end. */
  private drainedTo = 0n;
  generated = 0n;
  wasted = 0n;
  last: bigint | undefined;
  leases = 0;

  constructor(private readonly o: IssuerOptions) {
    this.def = o.info.def;
    this.revision = o.info.revision;
    // Both serve every draw from a grant made after it arrived (see the top of this file).
    this.global = this.def.ordering === "global" || this.def.ordering === "dc";
    const limit = this.def.limits.maxSegmentSize;
    this.sizer = new RangeSizer(
      Number(o.strategy.initialSize),
      Number(MIN_SEGMENT_SIZE),
      Number(limit > 0n ? limit : DEFAULT_MAX_SEGMENT_SIZE),
      o.strategy.targetSegmentMs,
    );
    this.capacityLeft = capacity(this.def, o.dc);
  }

  get map(): IdMap {
    return this.o.map;
  }

  /** The counter space it draws from: the edge's DC, or 0 under global ordering. */
  get dc(): number {
    return this.o.dc;
  }

  /**
   * One past the highest counter value this issuer has issued (0 before any): what a ledger may
   * never grant it again. Computed when asked, so the hot path does not pay for it.
   */
  get issuedMark(): bigint {
    let m = this.drainedTo;
    for (const s of this.segments) if (s.next > s.start && s.next > m) m = s.next;
    return m;
  }

  /**
   * One past the highest counter value this issuer holds or has issued: a new segment must lie
   * at or above it for ids to keep growing on this edge.
   */
  get heldTop(): bigint {
    let m = this.drainedTo;
    for (const s of this.segments) if (s.end > m) m = s.end;
    return m;
  }

  /** Ids held and not yet issued. */
  get runway(): bigint {
    let n = 0n;
    for (const s of this.segments) n += s.left;
    return n;
  }

  get segmentSize(): bigint {
    return BigInt(this.sizer.current);
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /** The held segments' unused parts, highest first (the order a clean close returns them in). */
  tails(): { start: bigint; end: bigint; grant: SegmentGrant }[] {
    return this.segments
      .filter((s) => s.left > 0n)
      .map((s) => ({ start: s.next, end: s.end, grant: s.grant }))
      .reverse();
  }

  /** Waits for the lease in flight, so a close sees (and returns) every segment it was granted. */
  settled(): Promise<void> {
    return this.inFlight;
  }

  /** The held segments and how far each is issued (for the journal). */
  held(): { start: bigint; end: bigint; next: bigint }[] {
    return this.segments.map((s) => ({ start: s.start, end: s.end, next: s.next }));
  }

  /** Forget the held segments (after a close returned or wasted them). */
  dropSegments(): void {
    this.segments.length = 0;
  }

  /**
   * `n` ids, synchronously when buffered, else a promise. Throws (or rejects with) EdgeError and
   * then issues nothing.
   */
  issue(n: number, deadlineMs = this.o.drawTimeoutMs): bigint[] | Promise<bigint[]> {
    const d = this.draw(n, deadlineMs);
    return d instanceof Promise ? d.then(idsOf) : idsOf(d);
  }

  /** As issue(), as a run when the ids come from one segment of a progression. */
  draw(n: number, deadlineMs = this.o.drawTimeoutMs): Drawn | Promise<Drawn> {
    if (!Number.isInteger(n) || n < 1 || n > this.o.maxDraw) {
      throw new EdgeError("invalid-argument", `count must be 1..${this.o.maxDraw}`, "count");
    }
    // A draw waits until the segments held at once cover it: the current one (perhaps nearly
    // used up) and MAX_SEGMENTS - 1 new ones. With a small segment limit, more could never come.
    const limit = this.def.limits.maxSegmentSize;
    const most = limit * BigInt(MAX_SEGMENTS - 1);
    if (limit > 0n && BigInt(n) > most) {
      throw new EdgeError(
        "invalid-argument",
        `count ${n} is more than one draw of "${this.def.name}" can hold: ${most} ` +
          `(${MAX_SEGMENTS - 1} segments of limits.maxSegmentSize ${limit})`,
        "count",
      );
    }
    if (!this.global && this.waiters.length === 0 && this.runway >= BigInt(n)) {
      const ids = this.takeDrawn(n);
      this.maybePrefetch();
      return ids;
    }
    return this.wait(n, deadlineMs);
  }

  /** One id: the hot path of GET and Issue. */
  issueOne(deadlineMs = this.o.drawTimeoutMs): bigint | Promise<bigint> {
    const s = this.segments[0];
    if (!this.global && s !== undefined && s.next < s.end && this.waiters.length === 0) {
      const c = s.next;
      if (s.firstUseMs === undefined) s.firstUseMs = this.o.now();
      s.next = c + 1n;
      const id = this.o.map.idOf(c);
      this.generated += 1n;
      this.last = id;
      if (s.next === s.end) this.retire();
      this.maybePrefetch();
      return id;
    }
    const r = this.issue(1, deadlineMs);
    return Array.isArray(r) ? r[0]! : r.then((ids) => ids[0]!);
  }

  /** Refuse every waiting draw (shutdown). */
  failWaiters(e: EdgeError): void {
    for (const w of this.waiters.splice(0)) this.settle(w, e);
  }

  /** `n` held ids as a run when the current segment holds them all and they progress, else listed. */
  private takeDrawn(n: number): Drawn {
    const s = this.segments[0];
    const step = this.o.map.stride;
    const count = BigInt(n);
    if (step === undefined || s === undefined || s.end - s.next < count) return this.take(n);
    if (s.firstUseMs === undefined) s.firstUseMs = this.o.now();
    const first = this.o.map.idOf(s.next);
    s.next += count;
    this.generated += count;
    this.last = first + step * (count - 1n);
    if (s.next === s.end) this.retire();
    return { first, step, count: n };
  }

  private take(n: number): bigint[] {
    const ids = new Array<bigint>(n);
    const map = this.o.map;
    const step = map.stride;
    let i = 0;
    while (i < n) {
      const s = this.segments[0]!;
      if (s.firstUseMs === undefined) s.firstUseMs = this.o.now();
      const left = s.end - s.next;
      const k = left < BigInt(n - i) ? Number(left) : n - i;
      if (k > 0) {
        if (step !== undefined) {
          // A progression: one bigint addition per id instead of idOf's multiplication.
          let id = map.idOf(s.next);
          ids[i++] = id;
          for (let j = 1; j < k; j++) ids[i++] = id += step;
        } else {
          let c = s.next;
          for (let j = 0; j < k; j++, c += 1n) ids[i++] = map.idOf(c);
        }
        s.next += BigInt(k);
      }
      if (s.next === s.end) this.retire();
    }
    this.generated += BigInt(n);
    this.last = ids[n - 1];
    return ids;
  }

  /** The current segment is used up: learn the draw rate from it and move to the next. */
  private retire(): void {
    const s = this.segments.shift()!;
    if (s.end > this.drainedTo) this.drainedTo = s.end;
    if (s.firstUseMs !== undefined && this.o.strategy.adaptive)
      this.sizer.drained(Number(s.size), this.o.now() - s.firstUseMs);
  }

  private maybePrefetch(): void {
    if (this.global || this.fetching || this.exhausted) return;
    const s = this.segments[0];
    const prefetch = s === undefined || (this.segments.length === 1 && s.next >= s.prefetchMark);
    if (prefetch) this.fetch(BigInt(this.sizer.current));
  }

  /** `deadlineMs`: give up after this long; a draw that gave up was issued nothing. */
  private wait(n: number, deadlineMs?: number): Promise<Drawn> {
    if (this.exhausted && this.runway < BigInt(n)) {
      throw this.exhaustedError(n);
    }
    if (this.waiters.length >= this.o.maxWaiters) {
      throw new EdgeError(
        "overloaded",
        `more than ${this.o.maxWaiters} draws of "${this.def.name}" are waiting for a segment`,
      );
    }
    return new Promise<Drawn>((resolve, reject) => {
      const since = this.o.now();
      const w: Waiter = {
        n,
        resolve: (ids) => {
          this.o.hooks?.onWaited?.((this.o.now() - since) / 1000);
          resolve(ids);
        },
        reject,
        inLease: false,
        done: false,
      };
      this.waiters.push(w);
      if (deadlineMs !== undefined) {
        const timer = setTimeout(() => {
          const i = this.waiters.indexOf(w);
          if (i >= 0) this.waiters.splice(i, 1);
          this.settle(
            w,
            new EdgeError("deadline", `no segment of "${this.def.name}" within ${deadlineMs} ms`),
          );
        }, deadlineMs);
        timer.unref();
        const settle = w.resolve;
        const fail = w.reject;
        Object.assign(w, {
          resolve: (ids: Drawn) => (clearTimeout(timer), settle(ids)),
          reject: (e: EdgeError) => (clearTimeout(timer), fail(e)),
        });
      }
      this.pump();
    });
  }

  /** Serve waiters in order from what is held; lease more when the head cannot be served. */
  private pump(): void {
    while (this.waiters.length > 0) {
      const w = this.waiters[0]!;
      if (this.global && !w.inLease) break;
      if (this.runway >= BigInt(w.n)) {
        this.waiters.shift();
        this.settle(w, this.takeDrawn(w.n));
        continue;
      }
      if (this.exhausted) {
        this.waiters.shift();
        this.settle(w, this.exhaustedError(w.n));
        continue;
      }
      break;
    }
    if (this.global && !this.waiters.some((w) => w.inLease) && this.runway > 0n) {
      // Ids left over from a lease (a draw in it gave up) were committed before later draws
      // arrived: issuing them would break real-time order. They are waste.
      this.wasted += this.runway;
      this.segments.length = 0;
    }
    if (this.fetching || this.exhausted) return;
    if (this.global) {
      // Ids left of an earlier lease (a draw in it gave up) were made before the draws of this
      // one arrived: they would break real-time order. Waste.
      if (this.runway > 0n && this.waiters.length > 0) {
        this.wasted += this.runway;
        this.segments.length = 0;
      }
      let need = 0n;
      for (const w of this.waiters) {
        w.inLease = true;
        need += BigInt(w.n);
      }
      if (need > 0n) this.fetch(need);
      return;
    }
    const head = this.waiters[0];
    if (head !== undefined) {
      const short = BigInt(head.n) - this.runway;
      const current = BigInt(this.sizer.current);
      this.fetch(short > current ? short : current);
    } else {
      this.maybePrefetch();
    }
  }

  private fetch(size: bigint): void {
    if (this.segments.length >= MAX_SEGMENTS) return;
    const limit = this.def.limits.maxSegmentSize;
    if (limit > 0n && size > limit) size = limit;
    const share = this.capacityLeft / this.o.strategy.spaceDivisor;
    if (size > share && share >= MIN_SEGMENT_SIZE) size = share;
    if (size > this.capacityLeft && this.capacityLeft > 0n) size = this.capacityLeft;
    this.fetching = true;
    this.inFlight = this.o.grant(size).then(
      (g) => {
        this.fetching = false;
        this.leases++;
        this.capacityLeft = capacity(this.def, this.o.dc) - g.end;
        if (g.revision > this.revision) this.o.hooks?.onNewerRevision?.(g.revision);
        this.segments.push(new Segment(g, this.o.strategy.prefetchAt));
        this.pump();
      },
      (e: unknown) => {
        this.fetching = false;
        const err = e instanceof EdgeError ? e : new EdgeError("internal", String(e));
        if (err.code === "exhausted") {
          this.exhausted = true;
          this.pump();
          return;
        }
        // Every waiting draw learns why; buffered ids keep flowing, and the next draw retries.
        for (const w of this.waiters.splice(0)) this.settle(w, err);
      },
    );
  }

  private exhaustedError(n: number): EdgeError {
    const left = this.runway;
    return new EdgeError(
      "exhausted",
      `sequence "${this.def.name}" is exhausted in dc ${this.o.dc}` +
        (left > 0n ? ` (${left} ids left, ${n} asked)` : ""),
    );
  }

  private settle(w: Waiter, r: Drawn | EdgeError): void {
    if (w.done) return;
    w.done = true;
    if (r instanceof EdgeError) w.reject(r);
    else w.resolve(r);
  }
}
