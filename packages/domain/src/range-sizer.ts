// Adapts the size of the next range to the draw rate: the edge sizes its segments with it, and the
// SDK its ranges. When a range is used up, the next is sized to last `lifetimeTargetMs` at the rate just seen, rounded up
// to a power of two (so it does not jitter), moved at most 4x per step (so one burst does not swing
// it), and kept within [min, max].
export class RangeSizer {
  private size: number;
  private max: number;

  constructor(
    initial: number,
    private readonly min: number,
    max: number,
    private readonly lifetimeTargetMs: number,
  ) {
    this.max = max;
    this.size = clamp(initial, Math.min(min, max), max);
  }

  /** Ids the next request asks for. */
  get current(): number {
    return this.size;
  }

  /** Lowers (or raises) the ceiling, e.g. to the sequence's limits.max_segment_size. */
  capAt(max: number): void {
    this.max = Math.max(1, max);
    this.size = clamp(this.size, Math.min(this.min, this.max), this.max);
  }

  /** A range of `count` ids was used up `lifetimeMs` after it became current. */
  drained(count: number, lifetimeMs: number): void {
    const rate = count / Math.max(lifetimeMs, 0.001);
    const want = Math.ceil(rate * this.lifetimeTargetMs);
    const bounded = clamp(want, Math.floor(this.size / 4), this.size * 4);
    this.size = clamp(pow2ceil(bounded), Math.min(this.min, this.max), this.max);
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

function pow2ceil(v: number): number {
  let p = 1;
  while (p < v) p *= 2;
  return p;
}
