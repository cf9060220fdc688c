// Segments from the DC's reserve pool (redis/pool.ts), which the ledger refills in the background.
// With a pool, an edge of an `edge`-ordered sequence issues from chunks carved out of it, as from
// segments, so the WAN to the ledger is off the path of every draw: the pool holds `reserveSeconds`
// of the whole DC's draw rate (measured from the pool's own carve count), topped up with fresh
// ledger windows while the ledger answers. Cut off from the ledger, the DC lives on the pool.
//
// Order per edge: a chunk must lie above every id this edge holds or has issued (`floor`). A
// chunk from the ledger directly (Redis was down a moment) lies above the pool's windows, so the
// next carve would find the pool below the floor: while the ledger answers, the edge then takes
// its segments from the ledger until the pool has moved past its floor; cut off, it skips (burns)
// what of the pool lies below its floor rather than fail the draw.
import type { SequenceDef } from "@dispenser/domain";
import { capacity } from "@dispenser/domain";
import { EdgeError } from "../errors.js";
import type { SegmentGrant } from "../ledger/ledger-port.js";
import type { AddOutcome, CarveOutcome, PoolWindow } from "../redis/pool.js";
import { MAX_POOL_CARVE, MAX_POOL_WINDOWS } from "../redis/pool.js";
import type { GrantFn } from "./sequence-issuer.js";

/** What the reserve needs of the pool (ReservePool). */
export interface PoolPort {
  add(name: string, dc: number, w: PoolWindow): Promise<AddOutcome>;
  carve(name: string, dc: number, max: number, floor: bigint, skip: boolean): Promise<CarveOutcome>;
}

export interface ReserveHooks {
  /** Ids that will never be issued: a carve not confirmed, a window that could not be added, a skip. */
  onBurnt?(name: string, ids: bigint, why: string): void;
  /** A window was added to the pool (or used by this edge itself when the pool would not take it). */
  onWindow?(name: string, ids: bigint, outcome: "added" | "kept" | "burnt"): void;
  /** A call to the pool failed: the edge uses the ledger directly for a moment. */
  onPoolError?(name: string, e: unknown): void;
}

export interface DcReserveOptions {
  readonly pool: PoolPort;
  /** Seconds of the DC's draw rate the pool holds. */
  readonly reserveSeconds: number;
  readonly now: () => number;
  /** The smallest window the ledger is asked for. Default 10,000. */
  readonly minWindow?: bigint;
  /** After a pool call failed, the ledger is used directly for this long, in ms. Default 1,000. */
  readonly poolRetryMs?: number;
  /** After a ledger call failed, it is not asked again for this long, in ms. Default 1,000. */
  readonly ledgerRetryMs?: number;
  readonly hooks?: ReserveHooks;
  /**
   * A cheap ledger call that needs its quorum (a linearizable read). A pool near its target asks
   * the ledger for nothing, so without it an edge would not know it was cut off (`onReserve`)
   * until the pool ran low; it is called when the ledger has not answered for PROBE_MS.
   */
  readonly probe?: (name: string) => Promise<unknown>;
}

/**
 * The pool's target is at most this many windows of the sequence's largest (its max_segment_size):
 * half of what a pool holds (MAX_POOL_WINDOWS), so that the DC's edges topping it up at once never
 * find it full (a window a full pool refuses in the background is burnt).
 */
const TARGET_WINDOWS = MAX_POOL_WINDOWS / 2;
/** Carves one grant may take before it gives up on the pool (each doubt burns its carve). */
const MAX_ATTEMPTS = 8;
/**
 * The DC's rate is the pool's carve count over the last RATE_SPAN_MS (at least RATE_MIN_MS of it).
 * Carves are lumpy (one chunk is seconds of an edge's draws), so a short span overstates or misses
 * them; over a minute one chunk is a small error, and always on the high side.
 */
const RATE_SPAN_MS = 60_000;
const RATE_MIN_MS = 5_000;
/** Carve samples kept per sequence (at high rates the span shrinks rather than the memory grow). */
const MAX_RATE_SAMPLES = 256;
/**
 * The pool is topped up when it holds less than this share of its target: a cut that comes just
 * before a top-up still finds 90% of `reserveSeconds` in the pool, and each window is at least a
 * tenth of the target (few ledger calls).
 */
const REFILL_BELOW = 0.9;
/** The ledger is probed (options.probe) when it has not answered anything for this long, in ms. */
const PROBE_MS = 5_000;
/** Share of the space left a window of a fixed-length sequence may take. */
const SPACE_DIVISOR = 16n;

/** What this edge knows of one sequence's pool in its DC. Bounded by the dispenser's sequences. */
interface View {
  gen: string;
  /** Ids left in the pool at the last carve. */
  left: number;
  /** DC-wide ids per second, measured from the pool's carve count. */
  rate: number;
  /** (ids ever carved, when) at this edge's carves, oldest first, within RATE_SPAN_MS plus one. */
  samples: { carved: number; atMs: number }[];
  refilling: boolean;
  poolDownUntil: number;
  /** Ids this edge's last window grant left of the DC's space (fixed-length caps). */
  spaceLeft: bigint | undefined;
  /** The sequence's largest window (max_segment_size), 0n for no limit. */
  maxWindow: bigint;
  /** Seconds of the DC's rate this pool holds: the sequence's reserve_seconds, or the edge's. */
  seconds: number;
}

export interface ReserveSample {
  readonly name: string;
  readonly left: number;
  readonly rate: number;
  /** Seconds the pool lasts at the DC's rate; undefined while the rate is unknown. */
  readonly runwaySeconds: number | undefined;
  /** The ledger did not answer lately: the DC lives on its reserve. */
  readonly onReserve: boolean;
}

export class DcReserve {
  private readonly views = new Map<string, View>();
  private readonly minWindow: bigint;
  private readonly poolRetryMs: number;
  private readonly ledgerRetryMs: number;
  /** After a ledger call failed as unreachable, it is not asked again before this time. */
  private ledgerDownUntil = 0;
  /** The last ledger call failed as unreachable (none has succeeded since): the DC lives on its reserve. */
  private ledgerDown = false;
  /** When the ledger last answered this edge's reserve (a grant, a refusal, a probe), or a probe failed. */
  private ledgerSeenAt: number;
  private probing = false;
  /** When the ledger call whose outcome `ledgerDown` reflects was started. */
  private latestCallAt = 0;
  /** While the ledger is down: the next probe, so that the edge sees it back without any draw. */
  private reprobe: ReturnType<typeof setTimeout> | undefined;
  /** The sequence probes ask about: the last one granted. */
  private probeName = "";
  private closed = false;

  constructor(private readonly o: DcReserveOptions) {
    this.minWindow = o.minWindow ?? 10_000n;
    this.poolRetryMs = o.poolRetryMs ?? 1_000;
    this.ledgerRetryMs = o.ledgerRetryMs ?? 1_000;
    this.ledgerSeenAt = o.now();
  }

  /** The pool of one sequence as this edge saw it last, for INFO and /metrics. */
  *samples(): Iterable<ReserveSample> {
    for (const name of this.views.keys()) yield this.sample(name)!;
  }

  /** One sequence's sample; undefined before this edge carved from its pool. */
  sample(name: string): ReserveSample | undefined {
    const v = this.views.get(name);
    if (!v) return undefined;
    const runwaySeconds = v.rate > 0 ? v.left / v.rate : undefined;
    return {
      name,
      left: v.left,
      rate: v.rate,
      runwaySeconds,
      onReserve: this.ledgerDown,
    };
  }

  forget(name: string): void {
    this.views.delete(name);
  }

  /**
   * A GrantFn that carves from the pool and refills it from `ledger` (the edge's own ledger
   * grant path, with its checks). `floor`: one past the highest counter value this edge holds or
   * has issued of the sequence.
   */
  grantFn(def: SequenceDef, dc: number, ledger: GrantFn, floor: () => bigint): GrantFn {
    const name = def.name;
    return async (size) => {
      const v = this.view(def);
      const max = size > BigInt(MAX_POOL_CARVE) ? MAX_POOL_CARVE : Number(size);
      let skip = false;
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        // A failed add (in refill) makes the pool unusable for a moment, as a failed call does.
        if (this.o.now() < v.poolDownUntil) return this.fromLedger(ledger, size);
        let r: CarveOutcome;
        try {
          r = await this.o.pool.carve(name, dc, max, floor(), skip);
        } catch (e) {
          this.poolFailed(v, name, e);
          return this.fromLedger(ledger, size);
        }
        switch (r.kind) {
          case "carved": {
            if (r.skipped > 0) this.o.hooks?.onBurnt?.(name, BigInt(r.skipped), "below this edge's own ids");
            this.gauge(v, r.gen, r.left, r.carved);
            this.topUp(def, dc, ledger, v);
            return chunkGrant(r);
          }
          case "no-replicas":
            // Nothing carved: the ledger directly, for a moment.
            this.poolFailed(v, name, noReplicas(r));
            return this.fromLedger(ledger, size);
          case "unconfirmed":
            // A master without its replicas (a failover under way, a replica down): the pool
            // cannot keep a carve now. The ledger directly, for a moment.
            this.o.hooks?.onBurnt?.(
              name,
              BigInt(max),
              `carve confirmed on ${r.acked} of ${r.wanted} replicas`,
            );
            v.poolDownUntil = this.o.now() + this.poolRetryMs;
            return this.fromLedger(ledger, size);
          case "below-floor":
            // The pool lies below ids this edge already has: the ledger, while it answers.
            try {
              return await this.fromLedger(ledger, size);
            } catch {
              // Cut off: skip what of the pool lies below.
            }
            skip = true;
            continue;
          case "empty":
          case "missing":
          case "rolled-back": {
            this.noteUncarved(v, name, r);
            // Nothing to carve: a window now, from the ledger (which must answer, or the draw fails).
            const own = await this.refill(def, dc, ledger, v, size);
            if (own) return own;
            continue;
          }
        }
      }
      return this.fromLedger(ledger, size);
    };
  }

  /**
   * Ordering `dc`: a GrantFn for exactly the ids asked (or fewer, at a window's end), carved from
   * the pool after the draws arrived, so ids grow in real-time order across the DC's edges. Never
   * the ledger directly (its grant would lie above the pool, and the next carves below it) and
   * never a window kept for this edge alone: without the pool, the draw fails.
   */
  exactGrantFn(def: SequenceDef, dc: number, ledger: GrantFn): GrantFn {
    const name = def.name;
    return async (size) => {
      const v = this.view(def);
      const max = size > BigInt(MAX_POOL_CARVE) ? MAX_POOL_CARVE : Number(size);
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        if (this.o.now() < v.poolDownUntil)
          throw new EdgeError("unavailable", "the datacenter's reserve pool failed a moment ago; retry");
        let r: CarveOutcome;
        try {
          r = await this.o.pool.carve(name, dc, max, 0n, false);
        } catch (e) {
          this.o.hooks?.onPoolError?.(name, e);
          throw new EdgeError("unavailable", `the datacenter's reserve pool did not answer: ${String(e)}`);
        }
        if (r.kind === "carved") {
          this.gauge(v, r.gen, r.left, r.carved);
          this.topUp(def, dc, ledger, v, false);
          return chunkGrant(r);
        }
        if (r.kind === "no-replicas") {
          this.o.hooks?.onPoolError?.(name, noReplicas(r));
          throw new EdgeError("unavailable", noReplicas(r).message);
        }
        if (r.kind === "unconfirmed") {
          this.o.hooks?.onBurnt?.(name, BigInt(max), `carve confirmed on ${r.acked} of ${r.wanted} replicas`);
          throw new EdgeError(
            "unavailable",
            `the datacenter's reserve pool could not confirm a carve on its replicas (${r.acked} of ${r.wanted})`,
          );
        }
        this.noteUncarved(v, name, r);
        // Empty, missing or rolled back: a window now (the ledger must answer, or the draw fails).
        await this.refill(def, dc, ledger, v, 0n, false);
      }
      throw new EdgeError("unavailable", "the datacenter's reserve pool could not be filled");
    };
  }

  private view(def: SequenceDef): View {
    let v = this.views.get(def.name);
    if (!v) {
      v = {
        gen: "",
        left: 0,
        rate: 0,
        samples: [],
        refilling: false,
        poolDownUntil: 0,
        spaceLeft: undefined,
        maxWindow: 0n,
        seconds: 0,
      };
      this.views.set(def.name, v);
    }
    // From the definition at every grant: the edge reads it again when it changes.
    v.maxWindow = def.limits.maxSegmentSize;
    v.seconds = this.secondsOf(def);
    this.probeName = def.name;
    return v;
  }

  /** The DC's rate from the pool's carve count (every edge's carves) over the last RATE_SPAN_MS. */
  private gauge(v: View, gen: string, left: number, carved: number): void {
    const now = this.o.now();
    v.left = left;
    const s = v.samples;
    // A new pool counts its carves from 0: the rate so far stays, the samples start again.
    if ((gen !== "" && gen !== v.gen) || (s.length > 0 && carved < s[s.length - 1]!.carved)) {
      if (gen !== "") v.gen = gen;
      v.samples = [{ carved, atMs: now }];
      return;
    }
    s.push({ carved, atMs: now });
    while (s.length > MAX_RATE_SAMPLES || (s.length > 2 && now - s[1]!.atMs >= RATE_SPAN_MS)) s.shift();
    const first = s[0]!;
    const dt = now - first.atMs;
    if (dt >= RATE_MIN_MS) v.rate = ((carved - first.carved) * 1000) / dt;
  }

  /** Ids the pool should hold: `reserveSeconds` of the DC's rate, and one window at the least. */
  /** Whether `def` has a reserve on this edge: its reserve_seconds is not 0. */
  serves(def: SequenceDef): boolean {
    return this.secondsOf(def) > 0;
  }

  private secondsOf(def: SequenceDef): number {
    return def.reserveSeconds ?? this.o.reserveSeconds;
  }

  private target(v: View): number {
    const t = Math.max(Number(this.minWindow), v.seconds * v.rate);
    return v.maxWindow > 0n ? Math.min(t, TARGET_WINDOWS * Number(v.maxWindow)) : t;
  }

  /** In the background: a window when the pool holds less than REFILL_BELOW of its target. */
  private topUp(def: SequenceDef, dc: number, ledger: GrantFn, v: View, keep = true): void {
    this.watchLedger();
    if (v.refilling || v.left >= this.target(v) * REFILL_BELOW || this.o.now() < this.ledgerDownUntil) return;
    void this.refill(def, dc, ledger, v, 0n, keep).catch(() => undefined);
  }

  /**
   * Leases one window and adds it to the pool, once: after a failed add it might be in the pool,
   * and adding it again (to a pool lost meanwhile) could hand its ids out twice, so it is burnt.
   * A window the full pool refuses is this edge's own: returned as a segment when the caller needs
   * one (`size` > 0) and may `keep` it, else burnt; a window refused as below the pool's top is
   * burnt.
   */
  private async refill(
    def: SequenceDef,
    dc: number,
    ledger: GrantFn,
    v: View,
    size: bigint,
    keep = true,
  ): Promise<SegmentGrant | undefined> {
    const name = def.name;
    v.refilling = true;
    try {
      let want = BigInt(Math.ceil(this.target(v) - v.left));
      if (want < this.minWindow) want = this.minWindow;
      if (want < size) want = size;
      const limit = def.limits.maxSegmentSize;
      if (limit > 0n && want > limit) want = limit;
      const space = (v.spaceLeft ?? capacity(def, dc)) / SPACE_DIVISOR;
      if (want > space && space >= size && space > 0n) want = space;
      const g = await this.ask(ledger, want);
      v.spaceLeft = capacity(def, dc) - g.end;
      const ids = g.end - g.start;
      let r: AddOutcome;
      try {
        r = await this.o.pool.add(name, dc, { start: g.start, end: g.end, fence: g.fence });
      } catch (e) {
        this.o.hooks?.onPoolError?.(name, e);
        this.o.hooks?.onWindow?.(name, ids, "burnt");
        this.o.hooks?.onBurnt?.(name, ids, "a window whose add to the pool may or may not have happened");
        v.poolDownUntil = this.o.now() + this.poolRetryMs;
        return undefined;
      }
      if (r.kind === "added") {
        if (r.dropped > 0)
          this.o.hooks?.onBurnt?.(name, BigInt(r.dropped), "a pool another Redis process wrote");
        this.o.hooks?.onWindow?.(name, ids, "added");
        v.left += Number(ids);
        return undefined;
      }
      // Only a full pool proves the window is not in it: a "below" may be the echo of this very
      // add, sent again after a lost reply.
      if (r.kind === "full" && size > 0n && keep) {
        this.o.hooks?.onWindow?.(name, ids, "kept");
        return g;
      }
      this.o.hooks?.onWindow?.(name, ids, "burnt");
      this.o.hooks?.onBurnt?.(name, ids, `a window the pool refused (${r.kind})`);
      return undefined;
    } finally {
      v.refilling = false;
    }
  }

  /** The pool failed a call or cannot confirm carves: the ledger directly, for a moment. */
  private poolFailed(v: View, name: string, e: unknown): void {
    v.poolDownUntil = this.o.now() + this.poolRetryMs;
    this.o.hooks?.onPoolError?.(name, e);
  }

  /**
   * A carve that found nothing to carve: an empty pool still tells its carve count; a pool the
   * script deleted (it could not be trusted) had ids left, which are burnt.
   */
  private noteUncarved(v: View, name: string, r: CarveOutcome): void {
    if (r.kind === "empty") this.gauge(v, "", 0, r.carved);
    if (r.kind !== "rolled-back" || r.dropped === 0) return;
    const why =
      r.why === "master-changed"
        ? "a pool another Redis process wrote (a failover or a restart)"
        : "a pool behind what this edge saw of it (restored from an old copy)";
    this.o.hooks?.onBurnt?.(name, BigInt(r.dropped), why);
  }

  private async fromLedger(ledger: GrantFn, size: bigint): Promise<SegmentGrant> {
    if (this.o.now() < this.ledgerDownUntil)
      throw new EdgeError(
        "unavailable",
        "the ledger did not answer a moment ago, and the DC's reserve cannot serve",
      );
    return this.ask(ledger, size);
  }

  /** One ledger call, noting whether the ledger answers. */
  private async ask(ledger: GrantFn, size: bigint): Promise<SegmentGrant> {
    const started = this.o.now();
    try {
      const g = await ledger(size);
      this.answered(undefined, started);
      return g;
    } catch (e) {
      this.answered(e, started);
      throw e;
    }
  }

  /**
   * Whether the ledger answered a call started at `started` that ended with `e` (undefined:
   * success). Calls end out of order: one that began before the last one noted says nothing new.
   */
  private answered(e: unknown, started: number): void {
    if (started < this.latestCallAt) return;
    this.latestCallAt = started;
    const now = this.o.now();
    if (e instanceof EdgeError && (e.code === "unavailable" || e.code === "deadline")) {
      this.ledgerDownUntil = now + this.ledgerRetryMs;
      this.ledgerDown = true;
      this.scheduleProbe();
      return;
    }
    // A grant, or a refusal: either way the ledger answers.
    this.ledgerDown = false;
    this.ledgerSeenAt = now;
  }

  /**
   * Probes the ledger in the background when nothing has told this edge it answers for a while
   * (`force`: now). While it is down, it is probed again every PROBE_MS, draws or not.
   */
  private watchLedger(force = false): void {
    const probe = this.o.probe;
    if (!probe || this.probing || this.closed) return;
    if (!force && this.o.now() - this.ledgerSeenAt < PROBE_MS) return;
    this.probing = true;
    const started = this.o.now();
    probe(this.probeName)
      .then(
        () => this.answered(undefined, started),
        (e: unknown) => this.answered(e, started),
      )
      .finally(() => {
        this.probing = false;
        // Still down (this probe failed, or a later call did meanwhile): probe again later.
        if (this.ledgerDown) this.scheduleProbe();
      });
  }

  /** The ledger did not answer: probe it again in PROBE_MS (if no draw has meanwhile). */
  private scheduleProbe(): void {
    if (!this.o.probe || this.reprobe || this.closed || this.probeName === "") return;
    this.ledgerSeenAt = this.o.now();
    this.reprobe = setTimeout(() => {
      this.reprobe = undefined;
      if (this.ledgerDown) this.watchLedger(true);
    }, PROBE_MS);
    this.reprobe.unref?.();
  }

  /** Stops probing the ledger. */
  close(): void {
    this.closed = true;
    clearTimeout(this.reprobe);
    this.reprobe = undefined;
  }
}

function noReplicas(r: Extract<CarveOutcome, { kind: "no-replicas" }>): Error {
  return new Error(
    `the DC's Redis master has ${r.connected} replica(s) connected and every carve must reach ${r.wanted}: ` +
      "the reserve cannot serve (start the replicas, or set --redis-min-replicas for a Redis without them)",
  );
}

/** A carved chunk as a segment. It has no return token: it is never given back to the ledger. */
function chunkGrant(r: Extract<CarveOutcome, { kind: "carved" }>): SegmentGrant {
  return {
    start: r.start,
    end: r.start + BigInt(r.count),
    fence: r.fence,
    revision: 0n,
    returnToken: "",
    clusterIdentity: "",
  };
}
