// The client: ids from ranges leased through an edge, handed out from a local buffer.
//
// The buffer is a current range and at most one prefetched range. When a share (`prefetchAt`) of
// the current range is used, the next one is leased, so at a steady rate a draw never waits on the
// network: it is a compare, an add and a return. The range size adapts to the draw rate.
//
// Draws that find the buffer empty wait in a bounded FIFO queue (`maxWaiters`, each for at most
// `drawTimeoutMs`). Invariant: while anyone waits, the buffer is empty (arriving ids go to the
// waiters first, in order), so a synchronous draw can never jump the queue.
import { MAX_ISSUE_BATCH } from "@dispenser/proto";
import { DispenserError, isRetryable } from "./errors.js";
import type { DispenserErrorCode } from "./errors.js";
import { toIdString } from "./ids.js";
import type { DispenserOptions, DrawMode, ResolvedOptions } from "./options.js";
import { MAX_BATCH, resolveOptions } from "./options.js";
import { GrantCheck } from "./grant-check.js";
import { RangeSizer } from "@dispenser/domain";
import { EdgeTransport } from "./transport.js";
import type { BufferSource, DispenserStats, ParsedId, SequenceInfo } from "./types.js";
import type { Chunk } from "./wire.js";
import { batchChunk, infoOf, leasedChunk } from "./wire.js";

export type { BufferSource, DispenserStats, ParsedId, SequenceInfo } from "./types.js";

interface Waiter {
  readonly need: number;
  readonly ids: bigint[];
  got: number;
  readonly resolve: (ids: bigint[]) => void;
  readonly reject: (e: DispenserError) => void;
  timer: NodeJS.Timeout | undefined;
}

/**
 * A client for one sequence. Create it with createDispenser(); it connects on first use.
 *
 * Ids are unique across every client and edge of the cluster. In `buffered` mode they grow within
 * one client as long as its ranges come from edges of one datacenter (every Lease is a fresh
 * ledger grant above all earlier ones); see DrawMode for ordering `global`.
 */
export class Dispenser {
  private readonly o: ResolvedOptions;
  private readonly transport: EdgeTransport;
  private readonly sizer: RangeSizer;

  // The current range, read by every draw: kept in plain fields for the hot path.
  private cur = 0n;
  private step = 1n;
  private left = 0;
  private list: readonly bigint[] | undefined = undefined;
  private listAt = 0;
  /** Call low() once `left` drops to this; -1: never. */
  private mark = -1;
  private currentCount = 0;
  private currentSinceMs = 0;
  /** The prefetched range (at most one). */
  private readonly queue: Chunk[] = [];

  private readonly waiters: Waiter[] = [];
  private inFlightDirect = 0;
  /** A refill loop runs; set and cleared synchronously, so no draw ever finds a stale value. */
  private refilling = false;
  /** The refill loop's promise, for close() and ready() to wait on. */
  private fetching: Promise<void> | undefined;
  private info: SequenceInfo | undefined;
  private infoLoading: Promise<SequenceInfo> | undefined;
  private source: BufferSource | undefined;
  /** The last retryable failure since the last success: what a timed-out draw reports. */
  private lastRetryError: DispenserError | undefined;
  /** The sequence ran out of ids: final, so later draws fail at once. */
  private exhausted: DispenserError | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;

  private leasedIds = 0n;
  private wastedIds = 0n;
  private readonly grants = new GrantCheck();
  private rangesReceived = 0;
  /** Largest Lease count: maxRangeSize, or the sequence's limits.max_segment_size if lower. */
  private leaseCap: number;

  constructor(options: DispenserOptions) {
    this.o = resolveOptions(options);
    this.transport = new EdgeTransport(this.o);
    this.sizer = new RangeSizer(
      this.o.initialRangeSize,
      this.o.minRangeSize,
      this.o.maxRangeSize,
      this.o.rangeLifetimeTargetMs,
    );
    this.leaseCap = this.o.maxRangeSize;
  }

  get sequence(): string {
    return this.o.sequence;
  }

  get mode(): DrawMode {
    return this.o.mode;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * The next id from the buffer, or undefined when it is empty (a refill is then under way) or the
   * client is closed. Never waits and never throws: the draw for the hottest loops, as
   * `d.nextSync() ?? (await d.next())`. Always undefined in direct mode.
   */
  nextSync(): bigint | undefined {
    if (this.left > 0) {
      const left = --this.left;
      let id: bigint;
      if (this.list === undefined) {
        id = this.cur;
        this.cur = id + this.step;
      } else {
        id = this.list[this.listAt++]!;
      }
      if (left <= this.mark) this.low(left);
      return id;
    }
    if (!this.closed && this.o.mode === "buffered") this.startFetch();
    return undefined;
  }

  /** The next id: from the buffer when it holds one (no network call), else once a range arrives. */
  next(): Promise<bigint> {
    if (this.left > 0) return Promise.resolve(this.nextSync()!);
    if (this.o.mode === "direct") return this.directOne().then((r) => r.value);
    return this.wait(1, [], 0).then((ids) => ids[0]!);
  }

  /** The next id as text, zero-padded to the sequence's length for types 1 and 2. */
  async nextString(): Promise<string> {
    if (this.o.mode === "direct") return (await this.directOne()).str;
    const id = await this.next();
    return toIdString(id, this.info?.length ?? 0);
  }

  /**
   * `n` ids (1..1,000,000), in the order they were handed out. All or nothing: on failure none of
   * them is returned (those already gathered are counted as wasted).
   */
  nextBatch(n: number): Promise<bigint[]> {
    if (!Number.isSafeInteger(n) || n < 1 || n > MAX_BATCH) {
      return Promise.reject(
        new DispenserError("invalid-argument", `nextBatch: n must be an integer in 1..${MAX_BATCH}`, {
          field: "n",
        }),
      );
    }
    if (this.o.mode === "direct") return this.directBatch(n);
    if (this.left >= n) {
      // Fast path: the whole batch from the buffer (it holds ids, so no one waits).
      const ids = new Array<bigint>(n);
      this.take(ids, 0, n);
      return Promise.resolve(ids);
    }
    const ids = new Array<bigint>(n);
    const got = this.waiters.length === 0 ? this.take(ids, 0, n) : 0;
    if (got === n) return Promise.resolve(ids);
    return this.wait(n, ids, got);
  }

  /** The sequence's definition as the client sees it (one DescribeSequence call, then cached). */
  describe(): Promise<SequenceInfo> {
    if (this.info !== undefined) return Promise.resolve(this.info);
    if (this.closed) return Promise.reject(this.closedError());
    return this.loadInfo(performance.now() + this.o.drawTimeoutMs);
  }

  /**
   * Connects, learns the sequence and fills the buffer, so the first draws do not wait. Optional:
   * draws do the same on demand. Rejects with the error that kept the buffer empty.
   */
  async ready(): Promise<void> {
    await this.describe();
    if (this.o.mode === "direct") return;
    for (;;) {
      if (this.left > 0) return;
      if (this.closed) throw this.closedError();
      if (this.exhausted) throw this.exhausted;
      if (!this.refilling) this.startFetch();
      await this.fetching;
      if (this.left === 0 && this.lastError !== undefined) throw this.lastError;
    }
  }

  /** The datacenter and counter `id` was made from (the edge's Parse call). */
  async parse(id: bigint | string): Promise<ParsedId> {
    if (this.closed) throw this.closedError();
    const r = await this.transport.call(
      "parse",
      {
        sequence: this.o.sequence,
        id: typeof id === "bigint" ? { $case: "value", value: id } : { $case: "str", value: id },
      },
      performance.now() + this.o.drawTimeoutMs,
    );
    return { dc: r.dc, counter: r.counter };
  }

  stats(): DispenserStats {
    let runway = BigInt(this.left);
    for (const c of this.queue) runway += BigInt(c.count);
    return {
      issued: this.leasedIds - runway - this.wastedIds,
      leased: this.leasedIds,
      wasted: this.wastedIds,
      ranges: this.rangesReceived,
      runway,
      rangeSize: this.sizer.current,
      source: this.source,
      waiting: this.waiters.length + this.inFlightDirect,
      endpoint: this.transport.endpoint,
    };
  }

  /**
   * Stops drawing: later draws reject with code `closed`, waiting draws are refused, and the
   * buffered ids are discarded. They are lost, not returned: a range leased by a client cannot be
   * taken back by the edge (nothing proves the client issued none of it), so they are counted as
   * `wasted` in stats(). A range still in flight is awaited (at most callTimeoutMs) only to count it.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    this.wastedIds += this.stats().runway;
    this.clearBuffer();
    const err = this.closedError();
    for (const w of this.waiters.splice(0)) this.fail(w, err);
    this.transport.drain();
    const f = this.fetching;
    if (this.refilling && f !== undefined) {
      let t: NodeJS.Timeout | undefined;
      await Promise.race([f, new Promise((r) => (t = setTimeout(r, this.o.callTimeoutMs)))]);
      clearTimeout(t);
    }
    this.transport.close();
  }

  // ---------------------------------------------------------------------------------- the buffer

  /** Takes up to `want - got` ids from the buffer into ids[got..]; returns the new `got`. */
  private take(ids: bigint[], got: number, want: number): number {
    while (got < want && this.left > 0) {
      const k = Math.min(want - got, this.left);
      const list = this.list;
      if (list === undefined) {
        let c = this.cur;
        const step = this.step;
        for (let i = 0; i < k; i++) {
          ids[got++] = c;
          c += step;
        }
        this.cur = c;
      } else {
        for (let i = 0; i < k; i++) ids[got++] = list[this.listAt++]!;
      }
      this.left -= k;
      if (this.left <= this.mark) this.low(this.left);
    }
    return got;
  }

  /** The current range passed its prefetch mark (left > 0) or ran out (left 0). */
  private low(left: number): void {
    if (left > 0) {
      this.mark = 0;
      if (this.queue.length === 0) this.startFetch();
      return;
    }
    this.sizer.drained(this.currentCount, performance.now() - this.currentSinceMs);
    const next = this.queue.shift();
    if (next !== undefined) {
      this.setCurrent(next);
      return;
    }
    this.clearBuffer();
    // Someone is drawing and the buffer is dry: refill without waiting for the next draw.
    if (!this.closed) this.startFetch();
  }

  private setCurrent(c: Chunk): void {
    this.cur = c.start;
    this.step = c.step;
    this.list = c.list;
    this.listAt = 0;
    this.left = c.count;
    this.currentCount = c.count;
    this.currentSinceMs = performance.now();
    this.mark = this.queue.length > 0 ? 0 : Math.floor(c.count * (1 - this.o.prefetchAt));
  }

  private clearBuffer(): void {
    this.left = 0;
    this.list = undefined;
    this.listAt = 0;
    this.mark = -1;
    this.currentCount = 0;
    this.queue.length = 0;
  }

  /** A range arrived: waiting draws first, in order, then the buffer. */
  private accept(c: Chunk): void {
    this.leasedIds += BigInt(c.count);
    this.rangesReceived++;
    if (this.closed) {
      this.wastedIds += BigInt(c.count);
      return;
    }
    if (this.left === 0) this.setCurrent(c);
    else this.queue.push(c);
    while (this.waiters.length > 0 && this.left > 0) {
      const w = this.waiters[0]!;
      w.got = this.take(w.ids, w.got, w.need);
      if (w.got < w.need) break;
      this.waiters.shift();
      clearTimeout(w.timer);
      w.resolve(w.ids);
    }
  }

  private wait(need: number, ids: bigint[], got: number): Promise<bigint[]> {
    const refuse = (e: DispenserError): Promise<bigint[]> => {
      this.wastedIds += BigInt(got);
      return Promise.reject(e);
    };
    if (this.closed) return refuse(this.closedError());
    if (this.exhausted) return refuse(this.exhausted);
    if (this.waiters.length >= this.o.maxWaiters) {
      return refuse(
        new DispenserError("overloaded", `${this.o.maxWaiters} draws already wait for ids (maxWaiters)`),
      );
    }
    return new Promise<bigint[]>((resolve, reject) => {
      const w: Waiter = { need, ids, got, resolve, reject, timer: undefined };
      w.timer = setTimeout(() => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        this.fail(w, this.timeoutError());
      }, this.o.drawTimeoutMs);
      this.waiters.push(w);
      this.startFetch();
    });
  }

  private fail(w: Waiter, e: DispenserError): void {
    clearTimeout(w.timer);
    this.wastedIds += BigInt(w.got);
    w.reject(e);
  }

  private timeoutError(): DispenserError {
    const last = this.lastRetryError;
    const code: DispenserErrorCode =
      last?.code === "unavailable" || last?.code === "overloaded" ? last.code : "deadline";
    const why = last ? `; last error: ${last.message}` : "";
    return new DispenserError(
      code,
      `no ids for "${this.o.sequence}" within ${this.o.drawTimeoutMs} ms${why}`,
      {
        ...(last?.details ?? {}),
      },
    );
  }

  private closedError(): DispenserError {
    return new DispenserError("closed", `the client of "${this.o.sequence}" is closed`);
  }

  // ---------------------------------------------------------------------------------- refills

  private lastError: DispenserError | undefined;

  /** Starts the refill loop unless it runs already. */
  private startFetch(): void {
    if (this.refilling || this.closed || this.exhausted) return;
    this.refilling = true;
    this.fetching = this.refill();
  }

  /**
   * Fetches ranges: one for a prefetch, more while draws wait. Never rejects. `refilling` is
   * cleared in the same tick as the last check for waiters, so a draw that arrives later always
   * starts a new loop.
   */
  private async refill(): Promise<void> {
    try {
      for (;;) {
        if (this.closed) return;
        try {
          const c = await this.fetchChunk(performance.now() + this.o.drawTimeoutMs);
          this.lastError = undefined;
          this.lastRetryError = undefined;
          this.accept(c);
        } catch (e) {
          const err =
            e instanceof DispenserError
              ? e
              : new DispenserError("internal", e instanceof Error ? e.message : String(e));
          if (this.closed) return;
          this.lastError = err;
          if (err.code === "exhausted") this.exhausted = err;
          if (!isRetryable(err)) {
            for (const w of this.waiters.splice(0)) this.fail(w, err);
            return;
          }
          this.lastRetryError = err;
        }
        // Waiters that remain (a range smaller than they need, or a retryable failure) keep the
        // loop going; each gives up on its own timer.
        if (this.waiters.length === 0) return;
      }
    } finally {
      this.refilling = false;
    }
  }

  private loadInfo(untilMs: number): Promise<SequenceInfo> {
    this.infoLoading ??= this.transport
      .call("describeSequence", { name: this.o.sequence }, untilMs, (e) => (this.lastRetryError = e))
      .then((r) => {
        const info = infoOf(r.sequence, this.o.sequence);
        this.adopt(info);
        return info;
      })
      .finally(() => (this.infoLoading = undefined));
    return this.infoLoading;
  }

  private adopt(info: SequenceInfo): void {
    this.info = info;
    this.source ??= info.type === 1 || info.ordering !== "edge" ? "issue-batch" : "lease";
    const limit = info.maxSegmentSize > 0n ? info.maxSegmentSize : BigInt(this.o.maxRangeSize);
    this.leaseCap = Number(limit < BigInt(this.o.maxRangeSize) ? limit : BigInt(this.o.maxRangeSize));
    this.sizer.capAt(this.leaseCap);
  }

  /** Ids wanted from the next request: the adapted size, or what the waiters need if more. */
  private wanted(cap: number): number {
    let need = 0;
    for (const w of this.waiters) need += w.need - w.got;
    return Math.min(Math.max(this.sizer.current, need), cap);
  }

  private async fetchChunk(untilMs: number): Promise<Chunk> {
    if (this.info === undefined) await this.loadInfo(untilMs);
    const onRetry = (e: DispenserError): void => void (this.lastRetryError = e);
    if (this.source === "lease") {
      const count = this.wanted(this.leaseCap);
      try {
        const r = await this.transport.call(
          "lease",
          { sequence: this.o.sequence, count: BigInt(count) },
          untilMs,
          onRetry,
        );
        const c = leasedChunk(r, count);
        try {
          this.grants.check({
            identity: r.clusterIdentity,
            dc: r.dc,
            first: c.start,
            last: c.start + c.step * BigInt(c.count - 1),
          });
        } catch (e) {
          this.leasedIds += BigInt(c.count);
          this.wastedIds += BigInt(c.count);
          throw e;
        }
        return c;
      } catch (e) {
        if (!(e instanceof DispenserError)) throw e;
        if (e.code === "failed-precondition") {
          // Type 1 or ordering global (the definition may have changed): batches instead.
          this.source = "issue-batch";
        } else if (e.code === "invalid-argument" && e.field === "count") {
          // limits.max_segment_size was lowered: learn the new one, ask again next round.
          this.info = undefined;
          throw new DispenserError("unavailable", e.message, e.details);
        } else {
          throw e;
        }
      }
    }
    const count = this.wanted(MAX_ISSUE_BATCH);
    const r = await this.transport.call("issueBatch", { sequence: this.o.sequence, count }, untilMs, onRetry);
    return batchChunk(r, count);
  }

  // ---------------------------------------------------------------------------------- direct mode

  private directCall<T>(f: (untilMs: number) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(this.closedError());
    if (this.inFlightDirect >= this.o.maxWaiters) {
      return Promise.reject(
        new DispenserError("overloaded", `${this.o.maxWaiters} draws already wait for ids (maxWaiters)`),
      );
    }
    this.inFlightDirect++;
    return f(performance.now() + this.o.drawTimeoutMs).finally(() => this.inFlightDirect--);
  }

  private directOne(): Promise<{ value: bigint; str: string }> {
    return this.directCall(async (untilMs) => {
      const r = await this.transport.call("issue", { sequence: this.o.sequence }, untilMs);
      this.leasedIds += 1n;
      this.rangesReceived++;
      if (this.closed) {
        this.wastedIds += 1n;
        throw this.closedError();
      }
      return r;
    });
  }

  private directBatch(n: number): Promise<bigint[]> {
    return this.directCall(async (untilMs) => {
      const ids: bigint[] = [];
      try {
        while (ids.length < n) {
          const count = Math.min(n - ids.length, MAX_ISSUE_BATCH);
          const r = await this.transport.call("issueBatch", { sequence: this.o.sequence, count }, untilMs);
          const c = batchChunk(r, count);
          this.leasedIds += BigInt(c.count);
          this.rangesReceived++;
          for (let i = 0; i < c.count; i++) ids.push(c.list?.[i] ?? c.start + c.step * BigInt(i));
          if (this.closed) throw this.closedError();
        }
        return ids;
      } catch (e) {
        this.wastedIds += BigInt(ids.length);
        throw e;
      }
    });
  }
}

/** A client for one sequence; see DispenserOptions. Throws DispenserError invalid-argument on a bad option. */
export function createDispenser(options: DispenserOptions): Dispenser {
  return new Dispenser(options);
}
