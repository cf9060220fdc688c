// How each auto_disk strategy (number-dispenser's names) maps onto segment sizing, prefetch and
// what happens to unused ids on a clean close. Every strategy, `memory` included, issues only from
// ranges the ledger granted, so none of them can repeat an id across edges, restarts or a delete
// and re-create; they differ in how many ids a crash wastes and how often the ledger is called.
import type { AutoDisk } from "@dispenser/domain";

export interface StrategyParams {
  /** Segment size adapts to the draw rate; false keeps `initialSize`. */
  readonly adaptive: boolean;
  /** A segment lasts about this long at the measured draw rate, when adaptive. */
  readonly targetSegmentMs: number;
  readonly initialSize: bigint;
  /** Share (0..1) of the current segment used before the next one is leased. */
  readonly prefetchAt: number;
  /** On SIGTERM, hand the unused tails back to the ledger (top-most ones are taken back). */
  readonly returnOnClose: boolean;
  /**
   * A segment takes at most this share (1/n) of the DC's space left, so one edge's large fixed
   * range cannot use up a small fixed-length space that other edges of the DC draw from too.
   */
  readonly spaceDivisor: bigint;
}

export const STRATEGIES: Readonly<Record<AutoDisk, StrategyParams>> = {
  // The cheapest: one large range leased when the sequence is first drawn here and issued from
  // process memory, no ledger call until 90% of it is used. A clean close returns the tail (one
  // call); a crash wastes it, and the restarted process leases above it.
  memory: {
    adaptive: false,
    targetSegmentMs: 0,
    initialSize: 1_000_000n,
    prefetchAt: 0.9,
    returnOnClose: true,
    spaceDivisor: 16n,
  },
  // A base is committed before any id above it is issued: big fixed segments, tails not returned.
  "pre-base": {
    adaptive: false,
    targetSegmentMs: 0,
    initialSize: 10_000n,
    prefetchAt: 0.5,
    returnOnClose: false,
    spaceDivisor: 1n,
  },
  // The default: segments sized to last ~10 s, next one leased at 20% use, tails returned.
  "pre-checkpoint": {
    adaptive: true,
    targetSegmentMs: 10_000,
    initialSize: 1_000n,
    prefetchAt: 0.2,
    returnOnClose: true,
    spaceDivisor: 1n,
  },
  // Long-lived segments (~60 s), relying on a clean close to give the tail back.
  elegant_close: {
    adaptive: true,
    targetSegmentMs: 60_000,
    initialSize: 1_000n,
    prefetchAt: 0.2,
    returnOnClose: true,
    spaceDivisor: 1n,
  },
  // Least waste on a crash: short segments (~1 s), leased early, tails returned.
  pre_close: {
    adaptive: true,
    targetSegmentMs: 1_000,
    initialSize: 100n,
    prefetchAt: 0.5,
    returnOnClose: true,
    spaceDivisor: 1n,
  },
};

/** The smallest adaptive segment (counter values); the sequence's own limit caps them from above. */
export const MIN_SEGMENT_SIZE = 16n;
