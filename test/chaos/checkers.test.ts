import { describe, expect, it } from "vitest";
import type { Draw } from "./checkers.js";
import { check, summaryLine } from "./checkers.js";

const draw = (o: Partial<Draw> & { id?: bigint; t: number; d?: number }): Draw => ({
  sequence: o.sequence ?? "s",
  ordering: o.ordering ?? "edge",
  dc: o.dc ?? 0,
  issuer: o.issuer ?? "e1",
  invokedAt: o.t,
  doneAt: o.t + (o.d ?? 1),
  ...(o.id !== undefined ? { id: o.id } : { error: o.error ?? "unavailable" }),
});

describe("the chaos checkers", () => {
  it("count duplicates per sequence, not across sequences", () => {
    const v = check(
      [
        draw({ id: 1n, t: 0 }),
        draw({ id: 1n, t: 5, issuer: "e2" }),
        draw({ id: 1n, t: 9, sequence: "other" }),
      ],
      { dcs: 1 },
    );
    expect(v.duplicated).toBe(1);
    expect(v.acknowledged).toBe(3);
  });

  it("check order per issuer for edge, per DC for dc, everywhere for global", () => {
    // Two issuers of an `edge` sequence may interleave; one issuer may not go back.
    const edge = [draw({ id: 10n, t: 0, issuer: "a" }), draw({ id: 5n, t: 5, issuer: "b" })];
    expect(check(edge, { dcs: 1 }).orderingViolations).toBe(0);
    expect(check([...edge, draw({ id: 7n, t: 9, issuer: "a" })], { dcs: 1 }).orderingViolations).toBe(1);
    // `dc`: across issuers of one DC, not across DCs.
    const dc = [
      draw({ id: 10n, t: 0, ordering: "dc", issuer: "a" }),
      draw({ id: 5n, t: 5, ordering: "dc", issuer: "b", dc: 1 }),
    ];
    expect(check(dc, { dcs: 2 }).orderingViolations).toBe(0);
    expect(
      check([...dc, draw({ id: 7n, t: 9, ordering: "dc", issuer: "b" })], { dcs: 2 }).orderingViolations,
    ).toBe(1);
    // `global`: across DCs too; concurrent draws (overlapping in time) may come in any order.
    const global = [
      draw({ id: 10n, t: 0, d: 10, ordering: "global", dc: 0 }),
      draw({ id: 5n, t: 5, ordering: "global", dc: 1 }),
    ];
    expect(check(global, { dcs: 2 }).orderingViolations).toBe(0);
    expect(
      check([...global, draw({ id: 8n, t: 20, ordering: "global", dc: 1 })], { dcs: 2 }).orderingViolations,
    ).toBe(1);
  });

  it("flags ids outside a fixed-length range, and counts availability per DC", () => {
    const v = check(
      [
        draw({ id: 100n, t: 0 }),
        draw({ id: 1000n, t: 1 }),
        draw({ t: 2, error: "exhausted" }),
        draw({ id: 5n, t: 3, sequence: "u", dc: 1, d: 1_500 }),
      ],
      { dcs: 2, ranges: new Map([["s", [100n, 999n] as const]]) },
    );
    expect(v.outOfRange).toBe(1);
    expect(v.errors.get("exhausted")).toBe(1);
    // The exhausted draw answered as it must: not counted against availability.
    expect(v.availability).toEqual([1, 0]);
    expect(summaryLine(v)).toBe(
      "chaos: attempted 4, acknowledged 3, duplicated 0, ordering violations 0, availability 50.0%",
    );
  });
});
