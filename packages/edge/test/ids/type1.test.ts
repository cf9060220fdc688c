import type { SequenceDef, SequenceSpec } from "@dispenser/ledger/state";
import { capacity, normalizeSequenceDef } from "@dispenser/ledger/state";
import { describe, expect, test } from "vitest";
import { Type1Ids } from "../../src/ids/type1.js";

function def(spec: SequenceSpec): SequenceDef {
  const r = normalizeSequenceDef(spec);
  if (!r.ok) throw new Error(r.errors.map((e) => e.reason).join("; "));
  return r.def;
}

describe("Type1Ids", () => {
  test("length 4, 3 DCs: every counter of every DC gets a distinct 4-digit id that parses back", () => {
    const d = def({ name: "tickets", type: 1, length: 4, datacenters: 3 });
    const ids = new Type1Ids(d, "secret");
    const seen = new Set<bigint>();
    for (let dc = 0; dc < 3; dc++) {
      for (let c = 0n; c < capacity(d, dc); c++) {
        const id = ids.idOf(dc, c);
        expect(id >= 1000n && id <= 9999n).toBe(true);
        seen.add(id);
        expect(ids.parse(id)).toEqual({ ok: true, dc, counter: c });
      }
    }
    expect(seen.size).toBe(9000); // the whole 4-digit space, each id once
  });

  test("two edges with the same name and secret agree; another secret gives other ids", () => {
    const d = def({ name: "orders", type: 1, length: 12, datacenters: 2 });
    const edgeA = new Type1Ids(d, "s");
    const edgeB = new Type1Ids(d, "s");
    const other = new Type1Ids(d, "t");
    let same = 0;
    for (let c = 0n; c < 1000n; c++) {
      expect(edgeB.idOf(1, c)).toBe(edgeA.idOf(1, c));
      if (other.idOf(1, c) === edgeA.idOf(1, c)) same++;
    }
    expect(same).toBeLessThanOrEqual(2);
  });

  test("length 18: the last counter of each DC", () => {
    const d = def({ name: "big", type: 1, length: 18, datacenters: 7 });
    const ids = new Type1Ids(d);
    for (let dc = 0; dc < 7; dc++) {
      const c = capacity(d, dc) - 1n;
      const id = ids.idOf(dc, c);
      expect(id.toString()).toHaveLength(18);
      expect(ids.parse(id)).toEqual({ ok: true, dc, counter: c });
    }
  });

  test("ids of another length do not parse; counters beyond capacity are refused", () => {
    const d = def({ name: "t", type: 1, length: 6, datacenters: 2 });
    const ids = new Type1Ids(d);
    expect(ids.parse(99_999n)).toEqual({ ok: false, reason: "id 99999 does not have exactly 6 digits" });
    expect(ids.parse(1_000_000n).ok).toBe(false);
    expect(() => ids.idOf(0, capacity(d, 0))).toThrow(RangeError);
    expect(() => ids.idOf(2, 0n)).toThrow(RangeError);
  });

  test("only type 1 sequences", () => {
    expect(() => new Type1Ids(def({ name: "t2", type: 2, length: 6 }))).toThrow(
      new RangeError('sequence "t2" is type 2, not a type 1 sequence'),
    );
  });
});
