import { describe, expect, test } from "vitest";
import { MAX_PERMUTATION_DOMAIN, permutationKeyFor, SlotPermutation } from "../../src/ids/permutation.js";
import { Prng } from "@dispenser/raft";

const slotsOf = (length: number): bigint => 9n * 10n ** BigInt(length - 1);
const keys = [
  permutationKeyFor("orders"),
  permutationKeyFor("orders", "cluster-secret"),
  permutationKeyFor("users"),
];
const key = keys[1]!;

/** Every k in [0, n): forward lands in [0, n) on a value no other k took, and inverse undoes it. */
function checkExhaustive(p: SlotPermutation): void {
  const n = Number(p.n);
  const seen = new Uint8Array(n);
  for (let k = 0; k < n; k++) {
    const v = p.forward(BigInt(k));
    if (v < 0n || v >= p.n) throw new Error(`forward(${k}) = ${v} is outside [0, ${p.n})`);
    if (seen[Number(v)] === 1) throw new Error(`forward(${k}) = ${v} repeats`);
    seen[Number(v)] = 1;
    if (p.inverse(v) !== BigInt(k)) throw new Error(`inverse(forward(${k})) = ${p.inverse(v)}`);
  }
}

describe("bijection", () => {
  test.each([1, 2, 3, 4, 5])("length %i: exhaustive, three keys", (length) => {
    for (const k of keys) checkExhaustive(new SlotPermutation(slotsOf(length), k));
  });

  test.each([6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18])(
    "length %i: 10k sampled slots and the edges",
    (length) => {
      const n = slotsOf(length);
      const p = new SlotPermutation(n, key);
      const rng = new Prng(length);
      const slots = [0n, 1n, n - 2n, n - 1n, ...Array.from({ length: 10_000 }, () => rng.below(n))];
      const values = new Map<bigint, bigint>();
      for (const k of slots) {
        const v = p.forward(k);
        if (v < 0n || v >= n) throw new Error(`forward(${k}) = ${v} is outside [0, ${n})`);
        const before = values.get(v);
        if (before !== undefined && before !== k) throw new Error(`forward(${k}) = forward(${before})`);
        values.set(v, k);
        if (p.inverse(v) !== k) throw new Error(`inverse(forward(${k})) = ${p.inverse(v)}`);
        if (p.forward(p.inverse(k)) !== k)
          throw new Error(`forward(inverse(${k})) = ${p.forward(p.inverse(k))}`);
      }
      expect(values.size).toBe(new Set(slots).size);
    },
  );

  test("type 1 domains split exactly, so they never cycle-walk", () => {
    for (let length = 1; length <= 18; length++) {
      const p = new SlotPermutation(slotsOf(length), key);
      expect(BigInt(p.a) * BigInt(p.b)).toBe(p.n);
      expect(p.a).toBeLessThanOrEqual(p.b);
      expect(p.b / p.a).toBeLessThan(1.12);
    }
  });

  // Any other n gets a*b > n and cycle walking; these cover primes, powers of two and near-squares.
  test.each([1n, 2n, 3n, 5n, 7n, 8n, 97n, 101n, 255n, 256n, 1000n, 4093n, 9973n, 65_537n, 99_991n])(
    "n = %s: exhaustive with cycle walking",
    (n) => {
      for (const k of keys) checkExhaustive(new SlotPermutation(n, k));
    },
  );

  test.each([(1n << 53n) + 3n, 10n ** 18n + 7n, MAX_PERMUTATION_DOMAIN])(
    "n = %s: sampled, bigint path with cycle walking",
    (n) => {
      const p = new SlotPermutation(n, key);
      const rng = new Prng(7);
      for (const k of [0n, n - 1n, ...Array.from({ length: 2_000 }, () => rng.below(n))]) {
        const v = p.forward(k);
        if (v < 0n || v >= n) throw new Error(`forward(${k}) = ${v} is outside [0, ${n})`);
        if (p.inverse(v) !== k) throw new Error(`inverse(forward(${k})) = ${p.inverse(v)}`);
      }
    },
  );
});

describe("key", () => {
  test("the same name and secret give the same permutation, on every edge", () => {
    expect(permutationKeyFor("orders", "s")).toEqual(permutationKeyFor("orders", "s"));
    expect(permutationKeyFor("orders")).toEqual(permutationKeyFor("orders", ""));
    const a = new SlotPermutation(slotsOf(9), permutationKeyFor("orders", "s"));
    const b = new SlotPermutation(slotsOf(9), permutationKeyFor("orders", "s"));
    for (let k = 0n; k < 1000n; k++) expect(b.forward(k)).toBe(a.forward(k));
  });

  test("name and secret are separated: moving a character between them changes the key", () => {
    const hex = (k: Uint8Array): string => Buffer.from(k).toString("hex");
    const all = [
      permutationKeyFor("ab", "c"),
      permutationKeyFor("a", "bc"),
      permutationKeyFor("abc"),
      permutationKeyFor("abc", "x"),
      permutationKeyFor("Orders"),
      permutationKeyFor("orders"),
    ].map(hex);
    expect(new Set(all).size).toBe(all.length);
  });

  test.each([2, 3, 4, 7, 12, 18])("length %i: different keys give unrelated permutations", (length) => {
    const n = slotsOf(length);
    const count = n < 1000n ? Number(n) : 1000;
    const ps = keys.map((k) => new SlotPermutation(n, k));
    for (let i = 0; i < ps.length; i++) {
      for (let j = i + 1; j < ps.length; j++) {
        let same = 0;
        for (let k = 0n; k < BigInt(count); k++) if (ps[i]!.forward(k) === ps[j]!.forward(k)) same++;
        // Two random permutations agree on about one point in total; allow a few.
        expect(same).toBeLessThanOrEqual(5);
      }
    }
  });

  test("length 1: many keys, many different permutations of the nine slots", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const p = new SlotPermutation(9n, permutationKeyFor(`s${i}`));
      seen.add(Array.from({ length: 9 }, (_, k) => p.forward(BigInt(k))).join(","));
    }
    expect(seen.size).toBeGreaterThanOrEqual(35); // 40 draws from 9! = 362880 rarely collide
  });

  test("the domain size is part of the round keys: lengths are not prefixes of each other", () => {
    const small = new SlotPermutation(slotsOf(6), key);
    const large = new SlotPermutation(slotsOf(7), key);
    let same = 0;
    for (let k = 0n; k < 1000n; k++) if (small.forward(k) === large.forward(k)) same++;
    expect(same).toBeLessThanOrEqual(5);
  });
});

describe("looks random", () => {
  /** Sum over buckets of (observed - expected)^2 / expected. */
  function chiSquared(counts: readonly number[], expected: number): number {
    return counts.reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0);
  }

  // Bounds are loose (mean df, sd sqrt(2 df); these allow about 6 sd) and the key is fixed, so the
  // tests cannot flake; a structural flaw (e.g. a missing round) lands far outside them.
  test.each([4, 7, 12, 16, 18])("length %i: consecutive slots land far apart", (length) => {
    const n = slotsOf(length);
    const p = new SlotPermutation(n, key);
    const base = n / 3n;
    const count = Math.min(10_000, Number(n - base) - 1);
    const near = n / 1000n; // a random pair is this close with probability about 0.2%
    let adjacent = 0;
    let close = 0;
    let previous = p.forward(base);
    for (let i = 1; i <= count; i++) {
      const v = p.forward(base + BigInt(i));
      const d = v > previous ? v - previous : previous - v;
      if (d === 1n) adjacent++;
      if (d < near) close++;
      previous = v;
    }
    expect(adjacent / count).toBeLessThan(0.002);
    expect(close / count).toBeLessThan(0.006);
  });

  test.each([7, 12, 18])("length %i: the first 100k slots fill 100 buckets evenly", (length) => {
    const n = slotsOf(length);
    const p = new SlotPermutation(n, key);
    const buckets = new Array<number>(100).fill(0);
    const lastDigit = new Array<number>(10).fill(0);
    for (let k = 0n; k < 100_000n; k++) {
      const v = p.forward(k);
      const b = Number((v * 100n) / n);
      buckets[b] = buckets[b]! + 1;
      const d = Number((10n ** BigInt(length - 1) + v) % 10n);
      lastDigit[d] = lastDigit[d]! + 1;
    }
    const chi = chiSquared(buckets, 1000);
    expect(chi).toBeGreaterThan(40); // 99 degrees of freedom: too even is suspicious as well
    expect(chi).toBeLessThan(185);
    expect(chiSquared(lastDigit, 10_000)).toBeLessThan(40); // 9 degrees of freedom
  });

  test("length 7: pairs of consecutive values are independent (10x10 serial test)", () => {
    const n = slotsOf(7);
    const p = new SlotPermutation(n, key);
    const cells = new Array<number>(100).fill(0);
    let previous = Number((p.forward(0n) * 10n) / n);
    for (let k = 1n; k <= 100_000n; k++) {
      const bucket = Number((p.forward(k) * 10n) / n);
      const cell = previous * 10 + bucket;
      cells[cell] = cells[cell]! + 1;
      previous = bucket;
    }
    expect(chiSquared(cells, 1000)).toBeLessThan(185);
  });

  test("length 7: one datacenter's slots (every third slot) are as spread as all slots", () => {
    const n = slotsOf(7);
    const p = new SlotPermutation(n, key);
    const buckets = new Array<number>(100).fill(0);
    for (let c = 0n; c < 50_000n; c++) {
      const b = Number((p.forward(c * 3n + 2n) * 100n) / n);
      buckets[b] = buckets[b]! + 1;
    }
    expect(chiSquared(buckets, 500)).toBeLessThan(185);
  });
});

describe("golden values", () => {
  // These pin the permutation: ids already issued were computed with it. If this test fails, the
  // construction changed and would issue ids that collide with old ones: do not update the values;
  // introduce a new key version instead.
  test("key derivation", () => {
    expect(Buffer.from(permutationKeyFor("orders")).toString("hex")).toBe(
      "38d510d295b16cb5b7e8f9ee781ed52f8ed54176dff1e7620047e51588702950",
    );
    expect(Buffer.from(permutationKeyFor("orders", "golden")).toString("hex")).toBe(
      "9cdbd499f110a131a43a5d047c4562e5f41ffa7859001ec112f98faa4e5094a9",
    );
  });

  test.each([
    [1, [1n, 2n, 4n, 8n]],
    [2, [56n, 83n, 32n, 45n]],
    [7, [3379039n, 5791529n, 6004109n, 4103120n]],
    [12, [456903950878n, 542802349824n, 132427776670n, 121965547927n]],
    [16, [5594543861098053n, 6868252549031001n, 6039647474097157n, 4210401341565249n]],
    [17, [60084951642137996n, 38399409683258545n, 45176893555368695n, 86747051267655243n]],
    [18, [407246562020577843n, 170556234844859331n, 29279881729184251n, 373358937701899842n]],
  ] as const)("length %i: P(0), P(1), P(2), P(N-1)", (length, expected) => {
    const n = slotsOf(length);
    const p = new SlotPermutation(n, permutationKeyFor("orders", "golden"));
    expect([0n, 1n, 2n, n - 1n].map((k) => p.forward(k))).toEqual(expected);
  });

  test("cycle-walking domains", () => {
    const golden = permutationKeyFor("orders", "golden");
    const p97 = new SlotPermutation(97n, golden);
    expect([0n, 1n, 96n].map((k) => p97.forward(k))).toEqual([85n, 38n, 61n]);
    const pMax = new SlotPermutation(MAX_PERMUTATION_DOMAIN, golden);
    expect([0n, 1n, MAX_PERMUTATION_DOMAIN - 1n].map((k) => pMax.forward(k))).toEqual([
      7835930526784252872n,
      2239428250574346111n,
      7496363142172108258n,
    ]);
  });
});

describe("bad input", () => {
  const p7 = new SlotPermutation(slotsOf(7), key);
  const p18 = new SlotPermutation(slotsOf(18), key);

  test("slots and values outside [0, n) are refused", () => {
    expect(() => p7.forward(-1n)).toThrow(new RangeError("slot -1 is outside 0..8999999"));
    expect(() => p7.forward(9_000_000n)).toThrow(new RangeError("slot 9000000 is outside 0..8999999"));
    expect(() => p7.inverse(9_000_000n)).toThrow(new RangeError("value 9000000 is outside 0..8999999"));
    expect(() => p18.forward(slotsOf(18))).toThrow(RangeError);
    expect(() => p18.inverse(-1n)).toThrow(RangeError);
    expect(() => p7.forward(1 as unknown as bigint)).toThrow(RangeError);
  });

  test("domains and keys are checked once, at construction", () => {
    expect(() => new SlotPermutation(0n, key)).toThrow(
      new RangeError("permutation domain 0 is outside 1..2^63"),
    );
    expect(() => new SlotPermutation(-5n, key)).toThrow(RangeError);
    expect(() => new SlotPermutation(MAX_PERMUTATION_DOMAIN + 1n, key)).toThrow(RangeError);
    expect(() => new SlotPermutation(10 as unknown as bigint, key)).toThrow(RangeError);
    expect(() => new SlotPermutation(100n, new Uint8Array(8))).toThrow(/at least 16 bytes/);
  });
});
