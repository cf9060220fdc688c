import { Counter, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { mergeLedgerText } from "../src/metrics.js";

describe("mergeLedgerText", () => {
  it("puts the ledger families of all nodes under one header and process families once", async () => {
    const texts = await Promise.all(
      [1, 2, 3].map(async (node) => {
        const r = new Registry();
        new Counter({
          name: "dispenser_ledger_grants_total",
          help: "grants",
          labelNames: ["node"],
          registers: [r],
        })
          .labels({ node: String(node) })
          .inc(node);
        new Counter({ name: "process_things_total", help: "things", registers: [r] }).inc(node);
        return r.metrics();
      }),
    );
    const merged = mergeLedgerText(texts);
    expect(merged.match(/# HELP dispenser_ledger_grants_total/g)).toHaveLength(1);
    expect(merged).toMatch(
      /# TYPE dispenser_ledger_grants_total counter\ndispenser_ledger_grants_total\{node="1"\} 1\ndispenser_ledger_grants_total\{node="2"\} 2\ndispenser_ledger_grants_total\{node="3"\} 3/,
    );
    expect(merged.match(/^process_things_total /gm)).toEqual(["process_things_total "]);
  });
});
