// The keyed permutation behind type 1 ("fixed-length random") ids.
//
// Slot k (slotOf() in @dispenser/ledger/state, in [0, N) with N = 9*10^(length-1)) becomes the id
// 10^(length-1) + P(k), where P is a bijection of [0, N) chosen by a key. Because P is a
// permutation and slots never repeat (the ledger hands each one out once), ids never repeat; and
// because every edge derives the same P from the same key, that holds across edges and restarts.
//
// P is part of the id contract: ids already issued were computed with it, so any change to the
// construction, the round count or the key derivation would let new ids collide with old ones.
// The golden values in test/ids/permutation.test.ts pin it; a new construction needs a new key
// version, never an edit of this one.
//
// Construction: an alternating Feistel network on a mixed-radix pair (the shape of NIST FF1,
// without AES). The domain [0, a*b) is read as x = A*b + B with A in [0, a), B in [0, b); a
// round maps (A, B) to (B, (A + F_r(B)) mod a) and the radices swap. Each round is invertible
// whatever F_r is, so the whole network is a bijection of [0, a*b). With an even round count the
// pair ends in its starting shape.
// - Split: for N = 9*10^k the split is exact (a*b = N): 3*10^(k/2) squared for even k, and
//   9*10^((k-1)/2) by 10^((k+1)/2) for odd k. Type 1 ids therefore never need cycle walking. Any
//   other n gets a = ceil(sqrt(n)), b = ceil(n/a) and cycle walking (below). Both halves stay
//   below 2^32 for every n <= 2^63, so rounds run on Numbers and 32-bit integer ops.
// - Round function: H(B) is two passes of a 32-bit avalanche mixer keyed by XOR with round key
//   words, stretched to 53 bits by a third pass; F_r(B) = floor(H(B) * m / 2^53), one multiply
//   instead of a (much slower) floating-point remainder, with a bias below m/2^53 < 2^-21. The
//   product is rounded once, so F_r can be m itself (as if 0): the round's single conditional
//   subtraction still yields (A + F_r) mod m. ECMAScript fixes IEEE-754 double arithmetic with
//   round-to-nearest, so F_r is the same on every engine and machine. Round keys come from
//   SHA-256 once per instance; no hash runs per call.
// - 10 rounds, as FF1 uses for near-balanced halves.
//
// This is a pseudorandom permutation for the purpose of spreading ids, not encryption: without a
// cluster secret in the key, anyone who knows the sequence name can compute P and predict ids.

import { createHash, createHmac } from "node:crypto";

/** Feistel rounds. Fixed: changing it changes every type 1 id (see the header). */
const ROUNDS = 10;
/** Key words per round: two for the keyed mixer, one for stretching its output to 53 bits. */
const WORDS_PER_ROUND = 3;
/** The largest domain: every id is below 2^63. */
export const MAX_PERMUTATION_DOMAIN = 1n << 63n;
/** Keys shorter than this are refused: they would make P easy to search for. */
export const MIN_PERMUTATION_KEY_BYTES = 16;

const TWO_POW_21 = 2_097_152;
const TWO_POW_53 = 2 ** 53;
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * The key of a sequence's permutation: SHA-256 over the sequence name and the cluster secret.
 * Deterministic, so every edge of the cluster computes the same permutation. No secret and an
 * empty secret are the same key.
 */
export function permutationKeyFor(sequenceName: string, clusterSecret?: string): Uint8Array {
  const h = createHash("sha256");
  h.update("dispenser/type1-permutation/key/v1\0");
  for (const part of [sequenceName, clusterSecret ?? ""]) {
    const bytes = Buffer.from(part, "utf8");
    const len = Buffer.alloc(4);
    len.writeUInt32BE(bytes.length);
    h.update(len).update(bytes); // length-prefixed, so ("ab", "c") and ("a", "bc") differ
  }
  return new Uint8Array(h.digest());
}

/**
 * What the ledger keeps of a permutation secret: 64 bits of an HMAC under it. Edges whose secrets
 * differ get different fingerprints (and would map one counter to different ids); the fingerprint
 * tells nothing useful about the secret itself.
 */
export function keyFingerprint(clusterSecret: string): string {
  return createHmac("sha256", clusterSecret)
    .update("dispenser/type1-permutation/fingerprint/v1")
    .digest("hex")
    .slice(0, 16);
}

/** The round key words for a domain of size n: SHA-256 in counter mode over key and n. */
function roundKeys(key: Uint8Array, n: bigint): Uint32Array {
  const words = new Uint32Array(ROUNDS * WORDS_PER_ROUND);
  let filled = 0;
  for (let block = 0; filled < words.length; block++) {
    const digest = createHash("sha256")
      .update(`dispenser/type1-permutation/rounds/v1\0${n}\0${block}\0`)
      .update(key)
      .digest();
    for (let i = 0; i < 8 && filled < words.length; i++) words[filled++] = digest.readUInt32LE(i * 4);
  }
  return words;
}

/** Chris Wellons' lowbias32: a bijective 32-bit mixer with strong avalanche. */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  return x ^ (x >>> 16);
}

/** F_r(x) for x < 2^32: key words w..w+2 of round r, scale = m / 2^53; in [0, m]. */
function roundValue(x: number, keys: Uint32Array, w: number, scale: number): number {
  const h = mix32(mix32(x ^ keys[w]!) ^ keys[w + 1]!);
  return Math.floor(((h >>> 0) * TWO_POW_21 + (mix32(h ^ keys[w + 2]!) >>> 11)) * scale);
}

/** ceil(sqrt(n)) for n >= 1. */
function ceilSqrt(n: bigint): bigint {
  let r = BigInt(Math.floor(Math.sqrt(Number(n))));
  while (r * r > n) r--; // the float estimate may be off by a little either way
  while (r * r < n) r++;
  return r;
}

/** The Feistel shape for n: a*b >= n, both at most 2^32, a*b = n when n is 9*10^k. */
function splitDomain(n: bigint): { a: bigint; b: bigint } {
  let k = 0;
  let rest = n;
  while (rest % 10n === 0n) {
    rest /= 10n;
    k++;
  }
  if (rest === 9n) {
    const half = 10n ** BigInt(k >> 1);
    return k % 2 === 0 ? { a: 3n * half, b: 3n * half } : { a: 9n * half, b: 10n * half };
  }
  const a = ceilSqrt(n);
  return { a, b: (n + a - 1n) / a };
}

/** A keyed bijection of [0, n): forward() maps a slot to its place, inverse() maps it back. */
export class SlotPermutation {
  /** The domain size: forward and inverse map [0, n) onto itself. */
  readonly n: bigint;
  /** The Feistel shape: a*b >= n. */
  readonly a: number;
  readonly b: number;
  private readonly bBig: bigint;
  /** n as a Number when a*b (hence every intermediate value) is at most 2^53 - 1, else -1. */
  private readonly nNumber: number;
  /** Round r uses key words 3r..3r+2 and works modulo mods[r]; scales[r] = mods[r] / 2^53. */
  private readonly keys: Uint32Array;
  private readonly mods: Float64Array;
  private readonly scales: Float64Array;
  /**
   * The most Feistel passes one call may take. Cycle walking starts at x in [0, n) and follows
   * x's cycle under the network E (a permutation of [0, a*b)) until it lands in [0, n) again.
   * The cycle contains x itself, so it gets back into [0, n) at the latest when it returns to x,
   * and the values passed on the way are distinct and all in [n, a*b): at most a*b - n of them.
   * So a walk takes at most a*b - n + 1 passes, for every x and every key; more means E is not a
   * permutation, a bug. The walks from all of [0, n) together pass every point of [0, a*b) once,
   * so the mean is a*b / n < 1 + 2/sqrt(n) passes; type 1 domains have a*b = n: always 1 pass.
   */
  private readonly walkMax: number;
  /** Where encrypt()/decrypt() leave their result, to return two halves without allocating. */
  private outA = 0;
  private outB = 0;

  constructor(n: bigint, key: Uint8Array) {
    if (typeof n !== "bigint" || n < 1n || n > MAX_PERMUTATION_DOMAIN) {
      throw new RangeError(`permutation domain ${String(n)} is outside 1..2^63`);
    }
    if (!(key instanceof Uint8Array) || key.length < MIN_PERMUTATION_KEY_BYTES) {
      throw new RangeError(`permutation key must be at least ${MIN_PERMUTATION_KEY_BYTES} bytes`);
    }
    const { a, b } = splitDomain(n);
    const size = a * b;
    if (size < n || a > 1n << 32n || b > 1n << 32n) throw new Error(`assertion: bad split ${a}x${b} of ${n}`);
    this.n = n;
    this.bBig = b;
    this.a = Number(a);
    this.b = Number(b);
    this.nNumber = size <= SAFE_MAX ? Number(n) : -1;
    const walk = size - n + 1n;
    this.walkMax = walk > SAFE_MAX ? Number.MAX_SAFE_INTEGER : Number(walk);
    this.keys = roundKeys(key, n);
    this.mods = new Float64Array(ROUNDS);
    this.scales = new Float64Array(ROUNDS);
    for (let r = 0; r < ROUNDS; r++) {
      const m = r % 2 === 0 ? this.a : this.b;
      this.mods[r] = m;
      this.scales[r] = m / TWO_POW_53;
    }
  }

  /** P(k) for k in [0, n). */
  forward(k: bigint): bigint {
    this.check(k, "slot");
    if (this.nNumber >= 0) return BigInt(this.forwardChecked(Number(k)));
    let x = k;
    for (let steps = 1; ; steps++) {
      this.encrypt(Number(x / this.bBig), Number(x % this.bBig));
      x = BigInt(this.outA) * this.bBig + BigInt(this.outB);
      if (x < this.n) return x;
      this.checkWalk(steps, k);
    }
  }

  /** P⁻¹(v) for v in [0, n): inverse(forward(k)) = k. */
  inverse(v: bigint): bigint {
    this.check(v, "value");
    if (this.nNumber >= 0) return BigInt(this.inverseChecked(Number(v)));
    let x = v;
    for (let steps = 1; ; steps++) {
      this.decrypt(Number(x / this.bBig), Number(x % this.bBig));
      x = BigInt(this.outA) * this.bBig + BigInt(this.outB);
      if (x < this.n) return x;
      this.checkWalk(steps, v);
    }
  }

  private forwardChecked(k: number): number {
    const b = this.b;
    let x = k;
    for (let steps = 1; ; steps++) {
      const low = x % b;
      this.encrypt((x - low) / b, low);
      x = this.outA * b + this.outB;
      if (x < this.nNumber) return x;
      this.checkWalk(steps, k);
    }
  }

  private inverseChecked(v: number): number {
    const b = this.b;
    let x = v;
    for (let steps = 1; ; steps++) {
      const low = x % b;
      this.decrypt((x - low) / b, low);
      x = this.outA * b + this.outB;
      if (x < this.nNumber) return x;
      this.checkWalk(steps, v);
    }
  }

  /** One pass of the network over the pair (hi in [0, a), lo in [0, b)). */
  private encrypt(hi: number, lo: number): void {
    const keys = this.keys;
    const mods = this.mods;
    const scales = this.scales;
    for (let r = 0; r < ROUNDS; r++) {
      const m = mods[r]!;
      const f = roundValue(lo, keys, r * WORDS_PER_ROUND, scales[r]!);
      let c = hi + f;
      if (c >= m) c -= m;
      hi = lo;
      lo = c;
    }
    this.outA = hi;
    this.outB = lo;
  }

  /** encrypt() run backwards. */
  private decrypt(hi: number, lo: number): void {
    const keys = this.keys;
    const mods = this.mods;
    const scales = this.scales;
    for (let r = ROUNDS - 1; r >= 0; r--) {
      const m = mods[r]!;
      // Round r turned (p, q) into (q, (p + F(q)) mod m): here hi = q and lo = (p + F(q)) mod m.
      const f = roundValue(hi, keys, r * WORDS_PER_ROUND, scales[r]!);
      let p = lo - f;
      if (p < 0) p += m;
      lo = hi;
      hi = p;
    }
    this.outA = hi;
    this.outB = lo;
  }

  private checkWalk(steps: number, from: number | bigint): void {
    if (steps >= this.walkMax) {
      throw new Error(`assertion: cycle walk from ${from} exceeded ${this.walkMax} passes over n=${this.n}`);
    }
  }

  private check(x: bigint, what: string): void {
    if (typeof x !== "bigint" || x < 0n || x >= this.n) {
      throw new RangeError(`${what} ${String(x)} is outside 0..${this.n - 1n}`);
    }
  }
}
