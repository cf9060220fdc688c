import { describe, expect, it } from "vitest";
import { gcSummary } from "./bench/support.js";

// Lines as node --trace-gc prints them (a ledger leader under load, trimmed).
const TRACE = [
  "[28816:0x7fdb8c000f00]       59 ms: Scavenge 3.2 (3.2) -> 2.8 (4.2) MB, 4.56 / 0.00 ms  (average mu = 1.000, current mu = 1.000) allocation failure; ",
  "[28816:0x7fdb8c000f00]       80 ms: Scavenge 3.9 (4.2) -> 3.5 (4.2) MB, 1.00 / 0.00 ms  (average mu = 1.000, current mu = 1.000) allocation failure; ",
  "[28816:0xd0d56d0]     4751 ms: Scavenge 34.6 (53.2) -> 21.5 (53.7) MB, 8.92 / 0.01 ms  (average mu = 1.000, current mu = 1.000) task; ",
  "[28816:0xd0d56d0]     4908 ms: Scavenge 35.6 (53.7) -> 22.4 (54.9) MB, 3.36 / 0.01 ms  (average mu = 1.000, current mu = 1.000) task; ",
  "[28816:0xd0d56d0]     5053 ms: Scavenge 35.5 (54.9) -> 23.2 (55.2) MB, 3.12 / 0.01 ms  (average mu = 1.000, current mu = 1.000) task; ",
  "[28816:0xd0d56d0]     5100 ms: Mark-Compact 23.9 (55.2) -> 14.1 (54.0) MB, 34.49 / 0.02 ms  (+ 12.3 ms in 12 steps since start of marking) finalize incremental marking via task; GC in old space requested",
  "[28816:0xd0d56d0]     5215 ms: Scavenge 30.3 (55.4) -> 15.0 (55.9) MB, 3.82 / 0.01 ms  (average mu = 1.000, current mu = 1.000) task; ",
  "[28816:0xd0d56d0]     9000 ms: Scavenge 16.0 (55.4) -> 15.5 (55.9) MB, 1.00 / 0.01 ms  (average mu = 1.000, current mu = 1.000) task; ",
  '{"level":30,"msg":"not a gc line"}',
].join("\n");

describe("gcSummary", () => {
  it("counts the main isolate only, and promotion between close scavenges only", () => {
    const g = gcSummary(TRACE)!;
    expect(g.scavenges).toBe(5);
    expect(g.markCompacts).toBe(1);
    // 21.5 -> 22.4 -> 23.2 over 302 ms; the pair across the mark-compact and the one 3.8 s apart
    // do not count.
    expect(g.promotedMBps).toBeCloseTo((1.7 * 1000) / 302, 5);
    expect(g.scavengesPerS).toBeCloseTo((2 * 1000) / 302, 5);
    expect(g.maxScavengeMs).toBe(8.92);
    expect(g.maxMarkCompactMs).toBe(34.49);
  });

  it("says nothing of a log without collections", () => {
    expect(gcSummary("listening 4242\n")).toBeUndefined();
  });
});
