import type { Rand } from "./config.js";

/**
 * A small, fast, seedable PRNG (sfc32 seeded through splitmix32): the one of the simulator and of
 * every randomized test. Every random choice comes from one of these, derived from a seed, so a
 * failing seed replays exactly. Not for anything an attacker may guess: production draws from its
 * CSPRNG.
 */
export class Prng implements Rand {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    let s = seed >>> 0;
    const next = (): number => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }

  intn(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** Uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.intn(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(xs: readonly T[]): T {
    if (xs.length === 0) throw new Error("pick from empty list");
    return xs[this.intn(xs.length)]!;
  }

  /** Roughly uniform bigint in [0, n) for n > 0 (128 random bits, reduced). */
  below(n: bigint): bigint {
    let v = 0n;
    for (let i = 0; i < 4; i++) v = (v << 32n) | BigInt(this.u32());
    return v % n;
  }

  bytes(n: number): Uint8Array {
    return Uint8Array.from({ length: n }, () => this.intn(256));
  }

  /** An independent stream for a sub-component, so adding draws in one part does not shift another. */
  fork(): Prng {
    return new Prng(this.u32());
  }
}
