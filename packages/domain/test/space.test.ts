import { describe, expect, test } from "vitest";
import type { SequenceDef, SequenceSpec } from "../src/sequence.js";
import { normalizeSequenceDef } from "../src/sequence.js";
import {
  capacity,
  idBase,
  idOf,
  idStride,
  INT64_MAX,
  parse,
  parseSlot,
  pow10,
  prefixShift,
  slotOf,
  slotSpace,
} from "../src/space.js";
import { Prng } from "@dispenser/raft";

function def(spec: SequenceSpec): SequenceDef {
  const r = normalizeSequenceDef(spec);
  if (!r.ok) throw new Error(r.errors.map((e) => e.reason).join("; "));
  return r.def;
}

/** The largest id a definition allows. */
function maxId(d: SequenceDef): bigint {
  return d.length === undefined ? INT64_MAX : pow10(d.length) - 1n;
}

/** A random valid type 2 or 3 definition, biased toward edges of the space. */
function randomDef(rng: Prng): SequenceDef {
  const datacenters = rng.pick([1, 2, 3, 7, 64, 1000, 1024, rng.range(1, 1024)]);
  if (rng.chance(0.5)) {
    const length = rng.range(Math.max(1, Math.ceil(Math.log10(datacenters + 1))), 18);
    const lo = pow10(length - 1);
    const room = pow10(length) - lo - BigInt(datacenters) + 1n; // every DC keeps an id
    const starting = rng.pick([lo, lo + rng.below(room), lo + room - 1n]);
    return def({ name: "s", type: 2, length, starting, datacenters });
  }
  const step = rng.pick([1n, 2n, 3n, 1000n, 1n + rng.below(1n << 40n)]);
  if (rng.chance(0.4)) {
    const shift = prefixShift(datacenters);
    const starting = rng.pick([0n, 1n, rng.below(1n << shift), (1n << shift) - 1n]);
    return def({ name: "s", type: 3, step, datacenters, layout: "prefix", starting });
  }
  const top = INT64_MAX - step * BigInt(datacenters - 1);
  const starting = rng.pick([0n, 1n, rng.below(top + 1n), top]);
  return def({ name: "s", type: 3, step, datacenters, starting });
}

function counters(rng: Prng, cap: bigint): bigint[] {
  const out = [0n, cap - 1n, rng.below(cap)];
  if (cap > 1n) out.push(cap - 2n, 1n);
  return out;
}

describe("id math properties (seeded, 2000 random definitions)", () => {
  const rng = new Prng(20250909);
  const defs = Array.from({ length: 2000 }, () => randomDef(rng));

  test("parse(idOf(c)) round-trips, so ids of different DCs never collide", () => {
    for (const d of defs) {
      for (let k = 0; k < 4; k++) {
        const dc = rng.intn(d.datacenters);
        for (const c of counters(rng, capacity(d, dc))) {
          expect(parse(d, idOf(d, dc, c))).toEqual({ ok: true, dc, counter: c });
        }
      }
    }
  });

  test("ids grow with the counter and keep their length", () => {
    for (const d of defs) {
      const dc = rng.intn(d.datacenters);
      const cap = capacity(d, dc);
      expect(idStride(d)).toBeGreaterThan(0n);
      if (cap < 2n) continue;
      const c = rng.below(cap - 1n);
      expect(idOf(d, dc, c + 1n)).toBeGreaterThan(idOf(d, dc, c));
      if (d.length !== undefined) {
        expect(idOf(d, dc, 0n).toString()).toHaveLength(d.length);
        expect(idOf(d, dc, cap - 1n).toString()).toHaveLength(d.length);
      }
    }
  });

  test("every DC has an id; the last id of the capacity fits and the next would not", () => {
    for (const d of defs) {
      for (const dc of [0, d.datacenters - 1, rng.intn(d.datacenters)]) {
        const cap = capacity(d, dc);
        expect(cap).toBeGreaterThan(0n);
        const last = idOf(d, dc, cap - 1n);
        expect(last).toBeLessThanOrEqual(maxId(d));
        expect(last).toBeLessThanOrEqual(INT64_MAX);
        const beyond = idBase(d, dc) + idStride(d) * cap;
        const ceiling =
          d.layout === "prefix" ? (BigInt(dc + 1) << prefixShift(d.datacenters)) - 1n : maxId(d);
        expect(beyond).toBeGreaterThan(ceiling);
        expect(() => idOf(d, dc, cap)).toThrow(RangeError);
      }
    }
  });

  test("two ids drawn from different DCs differ", () => {
    for (const d of defs) {
      if (d.datacenters < 2) continue;
      const a = rng.intn(d.datacenters);
      const b = (a + 1 + rng.intn(d.datacenters - 1)) % d.datacenters;
      const ca = rng.below(capacity(d, a));
      const cb = rng.below(capacity(d, b));
      expect(idOf(d, a, ca)).not.toBe(idOf(d, b, cb));
    }
  });
});

describe("exhaustive on small spaces", () => {
  test.each([
    ["length 2, 3 DCs", { name: "s", type: 2, length: 2, datacenters: 3 }],
    ["length 3 from 990, 7 DCs", { name: "s", type: 2, length: 3, starting: 990n, datacenters: 7 }],
    ["length 1, 9 DCs", { name: "s", type: 2, length: 1, datacenters: 9 }],
  ] as const)("type 2 %s: the DCs partition the whole range", (_, spec) => {
    const d = def(spec);
    const seen = new Set<bigint>();
    for (let dc = 0; dc < d.datacenters; dc++) {
      for (let c = 0n; c < capacity(d, dc); c++) seen.add(idOf(d, dc, c));
    }
    const all = maxId(d) - d.starting + 1n;
    expect(BigInt(seen.size)).toBe(all);
    expect([...seen].every((id) => id >= d.starting && id <= maxId(d))).toBe(true);
  });

  test("type 3 with a step: only grid ids, no overlap", () => {
    const d = def({ name: "s", type: 3, starting: INT64_MAX - 100n, step: 7n, datacenters: 3 });
    const seen = new Set<bigint>();
    let total = 0n;
    for (let dc = 0; dc < 3; dc++) {
      for (let c = 0n; c < capacity(d, dc); c++) seen.add(idOf(d, dc, c));
      total += capacity(d, dc);
    }
    expect(BigInt(seen.size)).toBe(total);
    expect(total).toBe(100n / 7n + 1n);
  });

  test("type 1: the DCs' slots partition 0..slotSpace-1", () => {
    const d = def({ name: "r", type: 1, length: 2, datacenters: 4 });
    expect(slotSpace(d)).toBe(90n);
    const seen = new Set<bigint>();
    for (let dc = 0; dc < 4; dc++) {
      for (let c = 0n; c < capacity(d, dc); c++) {
        const slot = slotOf(d, dc, c);
        expect(parseSlot(d, slot)).toEqual({ ok: true, dc, counter: c });
        seen.add(slot);
      }
    }
    expect([...seen].sort((a, b) => (a < b ? -1 : 1))).toEqual(
      Array.from({ length: 90 }, (_, i) => BigInt(i)),
    );
    expect(capacity(d, 0)).toBe(23n);
    expect(capacity(d, 3)).toBe(22n);
    expect(() => slotOf(d, 3, 22n)).toThrow(RangeError);
  });
});

describe("worked examples", () => {
  test("type 2, length 3, D=2: 450 ids per DC, the last being 998 and 999", () => {
    const d = def({ name: "s", type: 2, length: 3, datacenters: 2 });
    expect([capacity(d, 0), capacity(d, 1)]).toEqual([450n, 450n]);
    expect([idOf(d, 0, 0n), idOf(d, 1, 0n), idOf(d, 0, 449n), idOf(d, 1, 449n)]).toEqual([
      100n,
      101n,
      998n,
      999n,
    ]);
    const odd = def({ name: "s", type: 2, length: 3, starting: 101n, datacenters: 2 });
    expect([capacity(odd, 0), capacity(odd, 1)]).toEqual([450n, 449n]);
  });

  test("interleaved type 3: starting + step*(c*D + dc)", () => {
    const d = def({ name: "s", type: 3, starting: 1000n, step: 5n, datacenters: 4 });
    expect(idOf(d, 2, 3n)).toBe(1000n + 5n * (3n * 4n + 2n));
    expect(parse(d, 1070n)).toEqual({ ok: true, dc: 2, counter: 3n });
    expect(parse(d, 1071n).ok).toBe(false);
  });

  test("prefix type 3: dc * 2^S + starting + step*c, the DC in the top bits", () => {
    const d = def({ name: "s", type: 3, layout: "prefix", datacenters: 5, starting: 10n, step: 2n });
    expect(prefixShift(5)).toBe(60n); // 3 bits for DCs 0..4
    expect(idOf(d, 4, 7n)).toBe((4n << 60n) + 10n + 14n);
    expect(idOf(d, 4, 7n) >> 60n).toBe(4n);
    expect(capacity(d, 0)).toBe(capacity(d, 4));
    expect(capacity(d, 0)).toBe(((1n << 60n) - 1n - 10n) / 2n + 1n);
    const single = def({ name: "s", type: 3, layout: "prefix" });
    expect(idOf(single, 0, 41n)).toBe(42n);
  });

  test("parse rejects what no DC could have issued", () => {
    const d = def({ name: "s", type: 3, starting: 100n, step: 3n, datacenters: 2 });
    expect(parse(d, 99n).ok).toBe(false);
    expect(parse(d, 101n)).toEqual({ ok: false, reason: "id 101 is not on the step grid" });
    expect(parse(d, INT64_MAX + 1n).ok).toBe(false);
    const p = def({ name: "s", type: 3, layout: "prefix", datacenters: 5, starting: 10n });
    expect(parse(p, 5n << 60n).ok).toBe(false); // DC prefix 5 with only 5 DCs
    expect(parse(p, (1n << 60n) + 9n).ok).toBe(false); // below starting inside DC 1
    expect(parse(def({ name: "r", type: 1, length: 3 }), 123n).ok).toBe(false);
    expect(parseSlot(def({ name: "r", type: 1, length: 3 }), 900n).ok).toBe(false);
  });

  test("out-of-range DCs and wrong types throw (programming errors)", () => {
    const d = def({ name: "s", type: 2, length: 3, datacenters: 2 });
    expect(() => capacity(d, 2)).toThrow(RangeError);
    expect(() => capacity(d, -1)).toThrow(RangeError);
    expect(() => idOf(d, 0, -1n)).toThrow(RangeError);
    expect(() => slotSpace(d)).toThrow(RangeError);
    expect(() => idOf(def({ name: "r", type: 1, length: 3 }), 0, 0n)).toThrow(RangeError);
  });
});
