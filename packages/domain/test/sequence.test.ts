import { describe, expect, test } from "vitest";
import type { SequenceSpec } from "../src/sequence.js";
import { identityDiff, normalizeSequenceDef, validateChanges, validateSequenceDef } from "../src/sequence.js";

function def(spec: SequenceSpec) {
  const r = normalizeSequenceDef(spec);
  if (!r.ok) throw new Error(r.errors.map((e) => e.reason).join("; "));
  return r.def;
}

function errors(spec: SequenceSpec): Record<string, string> {
  const r = normalizeSequenceDef(spec);
  if (r.ok)
    throw new Error(
      `expected ${JSON.stringify(spec, (_, v: unknown) => (typeof v === "bigint" ? `${v}n` : v))} to be rejected`,
    );
  return Object.fromEntries(r.errors.map((e) => [e.field, e.reason]));
}

describe("defaults", () => {
  test("type 2 starts at the smallest id of its length", () => {
    expect(def({ name: "orders", type: 2, length: 3 })).toEqual({
      name: "orders",
      type: 2,
      length: 3,
      starting: 100n,
      step: 1n,
      datacenters: 1,
      layout: "interleaved",
      ordering: "edge",
      autoDisk: "pre-checkpoint",
      limits: { maxSegmentSize: 1_000_000n },
    });
  });

  test("type 1 stores 10^(length-1) as starting; giving that value explicitly is accepted", () => {
    expect(def({ name: "r", type: 1, length: 7 }).starting).toBe(1_000_000n);
    expect(def({ name: "r", type: 1, length: 7, starting: 1_000_000n }).starting).toBe(1_000_000n);
  });

  test("type 3 has no length and starts at 1", () => {
    const d = def({ name: "t", type: 3 });
    expect(d.length).toBeUndefined();
    expect("length" in d).toBe(false);
    expect(d.starting).toBe(1n);
    expect(def({ name: "t", type: 3, starting: 0n }).starting).toBe(0n);
  });

  test("length 1 covers 1..9 (0 is never a fixed-length id)", () => {
    expect(def({ name: "a", type: 2, length: 1 }).starting).toBe(1n);
    expect(errors({ name: "a", type: 2, length: 1, starting: 0n })["starting"]).toBe(
      "starting 0 is outside the 1-digit range 1..9",
    );
  });
});

describe("one clear reason per bad field", () => {
  const cases: [string, SequenceSpec, string, string][] = [
    ["empty name", { name: "", type: 3 }, "name", "name must be 1..64 characters of A-Z a-z 0-9 _ . : -"],
    ["name with a brace", { name: "a{b}", type: 3 }, "name", "name must be 1..64 characters"],
    ["name of 65 chars", { name: "x".repeat(65), type: 3 }, "name", "name must be 1..64"],
    ["type 4", { name: "a", type: 4 }, "type", "type must be 1 (fixed-length random), 2"],
    ["type 2 without length", { name: "a", type: 2 }, "length", "length is required for type 2"],
    ["length 0", { name: "a", type: 2, length: 0 }, "length", "length must be between 1 and 18"],
    ["length 19", { name: "a", type: 1, length: 19 }, "length", "length must be between 1 and 18"],
    ["length 2.5", { name: "a", type: 2, length: 2.5 }, "length", "length must be between 1 and 18"],
    ["length on type 3", { name: "a", type: 3, length: 5 }, "length", "length is not used by type 3"],
    [
      "starting below range",
      { name: "a", type: 2, length: 3, starting: 5n },
      "starting",
      "starting 5 is outside the 3-digit range 100..999",
    ],
    [
      "starting above range",
      { name: "a", type: 2, length: 3, starting: 1000n },
      "starting",
      "starting 1000 is outside the 3-digit range 100..999",
    ],
    [
      "starting on type 1",
      { name: "a", type: 1, length: 3, starting: 500n },
      "starting",
      "starting is not used by type 1",
    ],
    ["negative starting", { name: "a", type: 3, starting: -1n }, "starting", "starting must be >= 0"],
    ["step 0", { name: "a", type: 3, step: 0n }, "step", "step must be > 0"],
    ["negative step", { name: "a", type: 3, step: -3n }, "step", "step must be > 0"],
    ["step 2 on type 2", { name: "a", type: 2, length: 3, step: 2n }, "step", "step must be 1 for type 2"],
    ["step 2 on type 1", { name: "a", type: 1, length: 3, step: 2n }, "step", "step must be 1 for type 1"],
    ["step 2^63", { name: "a", type: 3, step: 1n << 63n }, "step", "step must be below 2^63"],
    [
      "0 datacenters",
      { name: "a", type: 3, datacenters: 0 },
      "datacenters",
      "datacenters must be between 1 and 1024",
    ],
    [
      "1025 datacenters",
      { name: "a", type: 3, datacenters: 1025 },
      "datacenters",
      "datacenters must be between 1 and 1024",
    ],
    [
      "layout sideways",
      { name: "a", type: 3, layout: "sideways" },
      "layout",
      "layout must be one of interleaved, prefix",
    ],
    [
      "prefix on type 2",
      { name: "a", type: 2, length: 5, layout: "prefix" },
      "layout",
      "layout prefix is only for type 3",
    ],
    [
      "ordering random",
      { name: "a", type: 3, ordering: "random" },
      "ordering",
      "ordering must be one of edge, dc, global",
    ],
    [
      "autoDisk disk",
      { name: "a", type: 3, autoDisk: "disk" },
      "autoDisk",
      "autoDisk must be one of memory, pre-base",
    ],
    [
      "maxSegmentSize 0",
      { name: "a", type: 3, limits: { maxSegmentSize: 0n } },
      "limits.maxSegmentSize",
      "limits.maxSegmentSize must be between 1 and 100000000",
    ],
    [
      "maxSegmentSize too big",
      { name: "a", type: 3, limits: { maxSegmentSize: 100_000_001n } },
      "limits.maxSegmentSize",
      "between 1 and 100000000",
    ],
    [
      "more DCs than type 2 ids",
      { name: "a", type: 2, length: 1, starting: 7n, datacenters: 4 },
      "datacenters",
      "datacenters 4 exceed the 3 ids from 7 to 9",
    ],
    [
      "more DCs than type 1 ids",
      { name: "a", type: 1, length: 1, datacenters: 10 },
      "datacenters",
      "datacenters 10 exceed the 9 ids of 1 digits",
    ],
    [
      "type 3 starting 2^63",
      { name: "a", type: 3, starting: 1n << 63n },
      "starting",
      "starting must be below 2^63",
    ],
    [
      "type 3 last DC beyond int64",
      { name: "a", type: 3, starting: (1n << 63n) - 2n, datacenters: 3 },
      "datacenters",
      "the first id of dc 2",
    ],
    [
      "prefix starting above the DC bits",
      { name: "a", type: 3, layout: "prefix", datacenters: 1024, starting: 1n << 53n },
      "starting",
      "starting 9007199254740992 must be below 2^53 so the 10-bit DC prefix",
    ],
  ];
  test.each(cases)("%s", (_, spec, field, reason) => {
    expect(errors(spec)[field]).toContain(reason);
  });

  test("several bad fields are all reported", () => {
    expect(
      Object.keys(errors({ name: "", type: 2, length: 30, step: 0n, datacenters: 0, ordering: "x" })),
    ).toEqual(["name", "length", "step", "datacenters", "ordering"]);
  });
});

describe("int64 bounds", () => {
  test("the largest type 3 starting is accepted when every DC still has an id", () => {
    expect(normalizeSequenceDef({ name: "a", type: 3, starting: (1n << 63n) - 1n }).ok).toBe(true);
    expect(normalizeSequenceDef({ name: "a", type: 3, starting: (1n << 63n) - 3n, datacenters: 3 }).ok).toBe(
      true,
    );
    expect(
      normalizeSequenceDef({
        name: "a",
        type: 3,
        layout: "prefix",
        datacenters: 1024,
        starting: (1n << 53n) - 1n,
      }).ok,
    ).toBe(true);
  });

  test("length 18 fits in int64", () => {
    expect(normalizeSequenceDef({ name: "a", type: 2, length: 18, datacenters: 1024 }).ok).toBe(true);
  });
});

test("validateSequenceDef applies no defaults", () => {
  const d = def({ name: "a", type: 2, length: 3 });
  expect(validateSequenceDef(d)).toEqual([]);
  expect(validateSequenceDef({ ...d, length: undefined }).map((e) => e.field)).toEqual(["length"]);
});

test("changes may touch only the safe fields, and at least one", () => {
  expect(validateChanges({})).toEqual([
    {
      field: "changes",
      reason: "changes must set at least one of autoDisk, ordering, limits, reserveSeconds",
    },
  ]);
  expect(validateChanges({ reserveSeconds: 0 })).toEqual([]);
  for (const bad of [-1, 1.5, 86_401])
    expect(validateChanges({ reserveSeconds: bad }).map((e) => e.field)).toEqual(["reserveSeconds"]);
  expect(validateChanges({ autoDisk: "memory", ordering: "global", limits: { maxSegmentSize: 5n } })).toEqual(
    [],
  );
  expect(validateChanges({ limits: { maxSegmentSize: 0n } }).map((e) => e.field)).toEqual([
    "limits.maxSegmentSize",
  ]);
});

test("reserveSeconds: 0 to a day, and never 0 with ordering dc (served from the reserve)", () => {
  expect(def({ name: "r", type: 3, reserveSeconds: 86_400 }).reserveSeconds).toBe(86_400);
  expect(def({ name: "r", type: 3, reserveSeconds: 0 }).reserveSeconds).toBe(0);
  expect(def({ name: "r", type: 3 }).reserveSeconds).toBeUndefined();
  expect(errors({ name: "r", type: 3, reserveSeconds: 86_401 })).toHaveProperty("reserveSeconds");
  expect(errors({ name: "r", type: 3, ordering: "dc", reserveSeconds: 0 })).toEqual({
    reserveSeconds: "ordering dc is served from the DC's reserve: reserveSeconds 0 would turn it off",
  });
});

test("identityDiff names the fields that move ids", () => {
  const a = def({ name: "a", type: 3, step: 2n });
  expect(identityDiff(a, { ...a, ordering: "global", autoDisk: "memory" })).toEqual([]);
  expect(identityDiff(a, { ...a, step: 3n, datacenters: 2 })).toEqual(["step 2 → 3", "datacenters 1 → 2"]);
});
