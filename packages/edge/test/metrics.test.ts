import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import type { SequenceSample } from "../src/metrics.js";
import { BoundedLabels, OTHER_LABEL as OTHER_SEQUENCES } from "@dispenser/plumbing";
import { EdgeMetrics } from "../src/metrics.js";

const sample = (name: string, generated: bigint, runway: bigint): SequenceSample => ({
  name,
  runway,
  size: 100n,
  generated,
  wasted: 0n,
  leases: 1,
});

describe("per-sequence series", () => {
  it("keep the first names they see, then one shared label", () => {
    const l = new BoundedLabels(2);
    expect(["a", "b", "c", "a", "d", "b"].map((n) => l.of(n))).toEqual([
      "a",
      "b",
      OTHER_SEQUENCES,
      "a",
      OTHER_SEQUENCES,
      "b",
    ]);
  });

  it("sum the sequences past the bound under (other), so series stay bounded", async () => {
    const registry = new Registry();
    const samples = Array.from({ length: 5 }, (_, i) => sample(`s${i}`, BigInt(10 * (i + 1)), 7n));
    const m = new EdgeMetrics(
      registry,
      () => samples,
      () => [],
      2,
    );
    const text = await registry.metrics();
    const issued = [...text.matchAll(/^dispenser_edge_ids_issued_total\{sequence="([^"]+)"\} (\d+)/gm)].map(
      (x) => [x[1], Number(x[2])],
    );
    expect(issued).toEqual([
      ["s0", 10],
      ["s1", 20],
      [OTHER_SEQUENCES, 30 + 40 + 50],
    ]);
    expect(text).toMatch(/^dispenser_edge_segment_runway\{sequence="\(other\)"\} 21$/m);
    // Counted from outside the scrape, too.
    m.keyMismatches.inc({ sequence: m.sequenceLabel("s4") });
    expect(await registry.metrics()).toMatch(
      /^dispenser_edge_key_mismatch_total\{sequence="\(other\)"\} 1$/m,
    );
  });
});
