import type { SequenceDef, SequenceSpec } from "@dispenser/domain";
import { capacity, normalizeSequenceDef } from "@dispenser/domain";
import { describe, expect, test } from "vitest";
import { EdgeError } from "../../src/errors.js";
import { idMapFor } from "../../src/issuing/id-map.js";

function def(spec: SequenceSpec): SequenceDef {
  const r = normalizeSequenceDef(spec);
  if (!r.ok) throw new Error(r.errors.map((e) => e.reason).join("; "));
  return r.def;
}

/** The edge's id maps of every DC of `d`, as edges with `secret` build them. */
const mapsOf = (d: SequenceDef, secret = "") =>
  Array.from({ length: d.datacenters }, (_, dc) => idMapFor(d, dc, secret));

// Type 1 ids as the edge issues them: the DC's slot through the sequence's keyed permutation.
describe("type 1 id map", () => {
  test("length 4, 3 DCs: every counter of every DC gets a distinct 4-digit id that parses back", () => {
    const d = def({ name: "tickets", type: 1, length: 4, datacenters: 3 });
    const maps = mapsOf(d, "secret");
    const seen = new Set<bigint>();
    for (let dc = 0; dc < 3; dc++) {
      for (let c = 0n; c < capacity(d, dc); c++) {
        const id = maps[dc]!.idOf(c);
        expect(id >= 1000n && id <= 9999n).toBe(true);
        seen.add(id);
        // Any DC's map parses any id of the sequence.
        expect(maps[(dc + 1) % 3]!.parse(id)).toEqual({ dc, counter: c });
      }
    }
    expect(seen.size).toBe(9000); // the whole 4-digit space, each id once
  });

  test("two edges with the same name and secret agree; another secret gives other ids", () => {
    const d = def({ name: "orders", type: 1, length: 12, datacenters: 2 });
    const edgeA = idMapFor(d, 1, "s");
    const edgeB = idMapFor(d, 1, "s");
    const other = idMapFor(d, 1, "t");
    let same = 0;
    for (let c = 0n; c < 1000n; c++) {
      expect(edgeB.idOf(c)).toBe(edgeA.idOf(c));
      if (other.idOf(c) === edgeA.idOf(c)) same++;
    }
    expect(same).toBeLessThanOrEqual(2);
  });

  test("golden ids: the ids already issued stay the ids issued (change the key version, never these)", () => {
    const d = def({ name: "orders", type: 1, length: 12, datacenters: 2 });
    const m = idMapFor(d, 1, "golden");
    expect([0n, 1n, 2n, capacity(d, 1) - 1n].map((c) => m.idOf(c))).toEqual([
      642802349824n,
      605867064989n,
      998510107957n,
      221965547927n,
    ]);
  });

  test("length 18: the last counter of each DC", () => {
    const d = def({ name: "big", type: 1, length: 18, datacenters: 7 });
    const maps = mapsOf(d);
    for (let dc = 0; dc < 7; dc++) {
      const c = capacity(d, dc) - 1n;
      const id = maps[dc]!.idOf(c);
      expect(id.toString()).toHaveLength(18);
      expect(maps[dc]!.parse(id)).toEqual({ dc, counter: c });
    }
  });

  test("ids of another length do not parse; counters beyond capacity are refused", () => {
    const d = def({ name: "t", type: 1, length: 6, datacenters: 2 });
    const m = idMapFor(d, 0);
    expect(() => m.parse(99_999n)).toThrow(
      new EdgeError("invalid-argument", 'id 99999 does not have the 6 digits of "t"', "id"),
    );
    expect(() => m.parse(1_000_000n)).toThrow(EdgeError);
    expect(() => m.idOf(capacity(d, 0))).toThrow(RangeError);
    expect(() => idMapFor(d, 2).idOf(0n)).toThrow(RangeError);
  });
});
