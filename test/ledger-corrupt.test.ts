import { LedgerClient } from "@dispenser/ledger";
import { Level } from "level";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, LedgerCluster } from "./support/ledger-cluster.js";
import { createRequest, sleep } from "./support/ledger-helpers.js";

// A node whose on-disk log fails its checks refuses to vote or serve, and says why: a log line,
// and a metric it keeps exporting.

describe("ledger node with a corrupt log (real process)", () => {
  const cluster = new LedgerCluster([1, 2, 3]);

  afterAll(async () => {
    await cluster.stop();
  });

  it("refuses to vote or serve, and exports dispenser_ledger_storage_corrupt 1", async () => {
    await cluster.init();
    cluster.startAll();
    const client = new LedgerClient({
      endpoints: cluster.addresses(),
      totalTimeoutMs: 20_000,
    });
    try {
      for (let i = 0; i < 100; i++) {
        const st = await client.call("clusterStatus", {}).catch(() => undefined);
        if (st && st.leaderId !== 0n && st.commit > 1n) break;
        await sleep(100);
      }
      await client.call("createSequence", createRequest("s"));
      // Let node 3 persist the entry, stop it, and flip a byte of its last log record.
      await sleep(500);
      await cluster.kill(3);
      const db = new Level<string, Uint8Array>(cluster.nodes.get(3)!.dataDir, {
        keyEncoding: "utf8",
        valueEncoding: "view",
      });
      let lastKey: string | undefined;
      for await (const key of db.keys({ gte: "l/", lt: "l0" })) lastKey = key;
      expect(lastKey).toBeDefined();
      const rec = Uint8Array.from(await db.get(lastKey!));
      rec[rec.length - 1] = rec[rec.length - 1]! ^ 0x5a;
      await db.put(lastKey!, rec);
      await db.close();

      const metricsPort = await freePort();
      cluster.start(3, ["--metrics-listen", `127.0.0.1:${metricsPort}`, "--log-level", "info"]);
      let body = "";
      for (let i = 0; i < 100 && !body.includes("dispenser_ledger_storage_corrupt"); i++) {
        await sleep(100);
        body = await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then(
          (r) => r.text(),
          () => "",
        );
      }
      expect(body).toMatch(/dispenser_ledger_storage_corrupt\{node="3"\} 1/);
      expect(cluster.logs(3)).toMatch(/refusing to vote or serve: the on-disk log is corrupt/);
      // The process stays up, but serves nothing: its gRPC port is closed.
      expect(cluster.nodes.get(3)!.proc!.exitCode).toBeNull();
      const direct = new LedgerClient({
        endpoints: [cluster.address(3)],
        attemptTimeoutMs: 500,
        totalTimeoutMs: 1_500,
      });
      await expect(direct.call("clusterStatus", {})).rejects.toThrow();
      direct.close();
      // The other two carry on.
      const r = await client.call("leaseSegment", {
        sequence: "s",
        dc: 0,
        size: 10n,
        requestId: "after",
        kind: 0,
      });
      expect(r.grant!.end).toBe(10n);
    } finally {
      client.close();
    }
  }, 60_000);
});
