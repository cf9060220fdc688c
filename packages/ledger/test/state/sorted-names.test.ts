import { describe, expect, test } from "vitest";
import { SortedNames } from "../../src/state/sorted-names.js";

describe("SortedNames", () => {
  test("inserts in any order keep every name in order, across block splits", () => {
    const s = new SortedNames();
    const want: string[] = [];
    let r = 7;
    for (let i = 0; i < 5000; i++) {
      r = (r * 48271) % 2147483647;
      const name = `n-${r % 100_000}`;
      if (want.includes(name)) continue;
      s.insert(name);
      want.push(name);
    }
    want.sort();
    expect(s.size).toBe(want.length);
    expect([...s]).toEqual(want);
    expect(s.toArray()).toEqual(want);
    expect(s.last()).toBe(want.at(-1));
    // From a present name (inclusive, exclusive) and from a name between two.
    const mid = want[1234]!;
    expect([...s.from(mid)].slice(0, 3)).toEqual(want.slice(1234, 1237));
    expect([...s.from(mid, true)].slice(0, 2)).toEqual(want.slice(1235, 1237));
    expect([...s.from(`${mid}!`)][0]).toBe(want[1235]);
    expect([...s.from("zzz")]).toEqual([]);
    expect([...s.from("")]).toEqual(want);
  });

  test("push appends names that come in order", () => {
    const s = new SortedNames();
    for (let i = 0; i < 1500; i++) s.push(`p${String(i).padStart(5, "0")}`);
    s.insert("p00000a");
    expect(s.toArray().slice(0, 3)).toEqual(["p00000", "p00000a", "p00001"]);
    expect(s.size).toBe(1501);
  });
});
