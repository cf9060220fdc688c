import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import type { AppResult } from "../src/ledger-app.js";
import { encodeLedgerCommand, LedgerApp } from "../src/ledger-app.js";
import { LedgerMetrics } from "../src/metrics.js";
import type { Command } from "../src/state/commands.js";
import { seqDef, tokenOf } from "./state/harness.js";

describe("LedgerApp metrics", () => {
  it("exports grants, ids and high-water marks per sequence and DC when scraped", async () => {
    const registry = new Registry();
    const app = new LedgerApp(7, new LedgerMetrics(registry, 7));
    let index = 0;
    const apply = (cmd: Command): AppResult =>
      app.apply(encodeLedgerCommand(cmd), { term: 1, index: ++index });
    apply({
      type: "CreateSequence",
      def: seqDef({ name: "orders", type: 3, datacenters: 2 }),
      createdAtMs: 1,
    });
    const lease = (dc: number, size: bigint, requestId: string, kind: "segment" | "window" = "segment") =>
      apply({
        type: "LeaseSegment",
        name: "orders",
        dc,
        size,
        requestId,
        kind,
        returnToken: tokenOf(requestId),
      });
    lease(0, 100n, "a");
    lease(0, 50n, "b");
    lease(1, 10n, "c", "window");
    const retried = lease(0, 100n, "a"); // the same request again: a replay, not a grant
    expect(retried.ok && retried.data.type === "LeaseSegment" && retried.data.replayed).toBe(true);
    const last = lease(0, 25n, "d");
    if (!last.ok || last.data.type !== "LeaseSegment") throw new Error("lease failed");
    const fence = last.data.grant.fence;
    // The top-most grant's tail comes back: the mark goes down to where it starts.
    apply({
      type: "ReturnSegment",
      name: "orders",
      dc: 0,
      start: 160n,
      end: 175n,
      fence,
      returnToken: tokenOf("d"),
      requestId: "r",
    });

    const text = await registry.metrics();
    const value = (series: string): number | undefined => {
      const line = text.split("\n").find((l) => l.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    };
    expect(value('dispenser_ledger_grants_total{node="7",sequence="orders",kind="segment"}')).toBe(3);
    expect(value('dispenser_ledger_grants_total{node="7",sequence="orders",kind="window"}')).toBe(1);
    expect(value('dispenser_ledger_granted_ids_total{node="7",sequence="orders"}')).toBe(185);
    expect(value('dispenser_ledger_high_water_mark{node="7",sequence="orders",dc="0"}')).toBe(160);
    expect(value('dispenser_ledger_high_water_mark{node="7",sequence="orders",dc="1"}')).toBe(10);
    // A second scrape reports the same totals (they are set from the tallies, not added again).
    expect(await registry.metrics()).toBe(text);
  });
});
