import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import type { AppResult } from "../src/ledger-app.js";
import { appSnapshot, encodeLedgerCommand, encodeMemberAddress, LedgerApp } from "../src/ledger-app.js";
import { LedgerState } from "../src/state/ledger-state.js";
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

describe("LedgerApp address book", () => {
  const appOf = (heard: [number, string, string][] = []): LedgerApp =>
    new LedgerApp(1, new LedgerMetrics(new Registry(), 1), (id, a) => heard.push([id, a.address, a.peer]));

  it("keeps each member's client and peer addresses, through a snapshot", () => {
    const app = appOf();
    const at = { term: 1, index: 1 };
    expect(app.apply(encodeMemberAddress(4, "10.0.0.4:7101", "10.0.0.4:7201"), at).ok).toBe(true);
    expect(app.apply(encodeMemberAddress(5, "10.0.0.5:7101"), { term: 1, index: 2 }).ok).toBe(true);
    expect(app.addresses.get(4)).toEqual({ address: "10.0.0.4:7101", peer: "10.0.0.4:7201" });
    expect(app.addresses.get(5)).toEqual({ address: "10.0.0.5:7101", peer: "10.0.0.5:7101" });
    const job = app.beginSnapshot();
    while (!job.step(1000));
    const snap = job.result();
    const heard: [number, string, string][] = [];
    const copy = appOf(heard);
    copy.restore(snap);
    expect(copy.addresses).toEqual(app.addresses);
    expect(heard).toEqual([
      [4, "10.0.0.4:7101", "10.0.0.4:7201"],
      [5, "10.0.0.5:7101", "10.0.0.5:7101"],
    ]);
  });

  it("reads a book written before members had peer ports of their own", () => {
    const copy = appOf();
    copy.restore(appSnapshot(new LedgerState().snapshot(), []));
    expect(copy.addresses.size).toBe(0);
    // A member on one port is written in the old row shape, [id, address], and read back whole.
    const old = appSnapshot(new LedgerState().snapshot(), [[2, { address: "h:1", peer: "h:1" }]]);
    const bookLength = new DataView(old.buffer, old.byteOffset).getUint32(0);
    expect(JSON.parse(new TextDecoder().decode(old.subarray(4, 4 + bookLength)))).toEqual([[2, "h:1"]]);
    copy.restore(old);
    expect(copy.addresses.get(2)).toEqual({ address: "h:1", peer: "h:1" });
  });

  it("refuses a malformed peer address and changes nothing", () => {
    const app = appOf();
    const bad = new TextEncoder().encode(JSON.stringify({ id: 3, address: "h:1", peer: "x".repeat(300) }));
    const entry = new Uint8Array(bad.byteLength + 1);
    entry[0] = 2;
    entry.set(bad, 1);
    const r = app.apply(entry, { term: 1, index: 1 });
    expect(r.ok).toBe(false);
    expect(app.addresses.size).toBe(0);
  });
});

describe("LedgerApp metrics past the series bound", () => {
  it("sums the grants of sequences past it under (other) and keeps their highest mark", async () => {
    const registry = new Registry();
    const app = new LedgerApp(1, new LedgerMetrics(registry, 1, 1));
    let index = 0;
    const apply = (cmd: Command): AppResult =>
      app.apply(encodeLedgerCommand(cmd), { term: 1, index: ++index });
    for (const name of ["a", "b", "c"])
      apply({ type: "CreateSequence", def: seqDef({ name, type: 3, datacenters: 1 }), createdAtMs: 1 });
    const lease = (name: string, size: bigint, id: string): AppResult =>
      apply({
        type: "LeaseSegment",
        name,
        dc: 0,
        size,
        requestId: id,
        kind: "segment",
        returnToken: tokenOf(id),
      });
    lease("a", 10n, "1");
    lease("b", 20n, "2");
    lease("c", 50n, "3");
    const text = await registry.metrics();
    const ids = [
      ...text.matchAll(/^dispenser_ledger_granted_ids_total\{node="1",sequence="([^"]+)"\} (\d+)/gm),
    ];
    expect(ids.map((m) => [m[1], Number(m[2])])).toEqual([
      ["a", 10],
      ["(other)", 70],
    ]);
    expect(text).toMatch(/^dispenser_ledger_high_water_mark\{node="1",sequence="\(other\)",dc="0"\} (\d+)$/m);
    const marks = [
      ...text.matchAll(/^dispenser_ledger_high_water_mark\{node="1",sequence="\(other\)",dc="0"\} (\d+)$/gm),
    ];
    expect(marks).toHaveLength(1);
  });
});
