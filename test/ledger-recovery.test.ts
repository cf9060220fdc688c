import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { LedgerClient } from "@dispenser/ledger";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EdgeProcess } from "./support/edge-process.js";
import { LedgerCluster } from "./support/ledger-cluster.js";
import { waitForLeader } from "./support/ledger-helpers.js";

// A ledger that lost every volume, with real processes: a 3-node ledger, an edge with a journal,
// the `dispenser` command for backup, restore and raise-mark. The edge refuses the fresh cluster
// (another identity) and the restored one's grants below what it held, until the marks are
// raised; no id is ever issued twice.

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, "..");
const CLI = join(REPO, "packages", "cli", "src", "main.ts");

async function dispenser(...args: string[]): Promise<string> {
  const r = await run(process.execPath, ["--import", "tsx", CLI, ...args], {
    cwd: REPO,
    encoding: "utf8",
    timeout: 60_000,
  });
  return r.stdout;
}

describe("a ledger that lost all its data (real processes)", () => {
  const ledger = new LedgerCluster([1, 2, 3]);
  const work = mkdtempSync(join(tmpdir(), "ledger-recovery-"));
  let edge: EdgeProcess;
  let redis: Redis;

  beforeAll(async () => {
    await ledger.init();
    ledger.startAll();
    const lc = new LedgerClient({ endpoints: ledger.addresses(), totalTimeoutMs: 20_000 });
    await waitForLeader(lc);
    lc.close();
    edge = new EdgeProcess(ledger.addresses(), ["--data-dir", join(work, "edge")]);
    await edge.init();
    await edge.start();
    redis = new Redis({ port: edge.respPort, host: "127.0.0.1", maxRetriesPerRequest: 1 });
    redis.on("error", () => undefined);
  }, 60_000);

  afterAll(async () => {
    redis?.disconnect();
    await edge?.stop("SIGKILL").catch(() => undefined);
    await ledger.stop();
    rmSync(work, { recursive: true, force: true });
  });

  /** Stops every node, throws its data away; `prepare` may fill the empty directories. */
  async function loseEverything(prepare?: (id: number, dir: string) => Promise<void>): Promise<void> {
    for (const id of ledger.ids) await ledger.kill(id);
    for (const n of ledger.nodes.values()) {
      rmSync(n.dataDir, { recursive: true, force: true });
      await prepare?.(n.id, n.dataDir);
    }
    ledger.startAll(); // --bootstrap, as compose and k8s pass on every start
    const lc = new LedgerClient({ endpoints: ledger.addresses(), totalTimeoutMs: 20_000 });
    await waitForLeader(lc);
    lc.close();
  }

  /** Draws until the edge needs a lease; resolves with the ids and the error that stopped it. */
  async function drain(name: string): Promise<{ ids: string[]; error: string }> {
    const ids: string[] = [];
    for (let i = 0; i < 200; i++) {
      try {
        ids.push(...((await redis.call("GETN", name, "10000")) as string[]));
      } catch (e) {
        return { ids, error: (e as Error).message };
      }
    }
    throw new Error("the edge never needed a lease");
  }

  it("refuses a fresh cluster, refuses a restored one below its mark until raised, never repeats", async () => {
    const backup = join(work, "backup.json");
    const seen = new Set<string>();
    const take = (ids: string[]): void => {
      for (const id of ids) {
        expect(seen.has(id), `id ${id} issued twice`).toBe(false);
        seen.add(id);
      }
    };
    await redis.call("HSET", "orders", "type", "3", "auto_disk", "pre-base");
    take((await redis.call("GETN", "orders", "5000")) as string[]);
    const out = await dispenser(
      "ledger",
      "backup",
      "--ledger",
      ledger.addresses().join(","),
      "--out",
      backup,
      "--json",
    );
    const summary = JSON.parse(out) as { cluster_identity: string; bytes: number };
    expect(summary.cluster_identity).toMatch(/^[0-9a-f]{32}$/);
    // Issued after the backup: a restore from it would hand these out again.
    take((await redis.call("GETN", "orders", "10000")) as string[]);
    take((await redis.call("GETN", "orders", "10000")) as string[]);

    // Every volume lost; the nodes start afresh with --bootstrap: a new cluster, a new identity.
    await loseEverything();
    await redis.call("HSET", "orders", "type", "3", "auto_disk", "pre-base");
    const fresh = await drain("orders");
    take(fresh.ids);
    expect(fresh.error).toMatch(/answered as cluster [0-9a-f]{32}, but this edge has drawn ids from cluster/);
    const before = await (await fetch(`http://127.0.0.1:${edge.metricsPort}/metrics`)).text();
    expect(before).toMatch(/dispenser_edge_grants_refused_total\{reason="identity"\} [1-9]/);
    // A restarted edge remembers (its journal): it still refuses the fresh cluster.
    await edge.stop("SIGKILL");
    await edge.start();
    await expect(redis.call("GETN", "orders", "10")).rejects.toThrow(/answered as cluster/);

    // Restored from the backup: the identity the edge knows, but marks from before the backup.
    await loseEverything(async (id, dir) => {
      await dispenser(
        "ledger",
        "restore",
        "--from",
        backup,
        "--data-dir",
        dir,
        "--id",
        String(id),
        "--members",
        ledger.ids.join(","),
        "--cluster-id",
        ledger.clusterId,
      );
    });
    // On hold: the restored ledger does not know what was issued after the backup.
    const held = await drain("orders");
    take(held.ids);
    expect(held.error).toMatch(/restored from a backup and does not know ids issued after it/);
    const ledgerArgs = ["--ledger", ledger.addresses().join(",")];

    // An operator who releases the hold without raising the marks: the edge still refuses grants
    // of counters it has already issued from, and names the mark it needs.
    expect(await dispenser("ledger", "release", ...ledgerArgs)).toBe(
      "released: every sequence leases again\n",
    );
    const released = await drain("orders");
    take(released.ids);
    const refusal = /below (\d+): this edge has already issued ids from counter \d+ on/.exec(released.error);
    expect(refusal, released.error).not.toBeNull();
    const metrics = await (await fetch(`http://127.0.0.1:${edge.metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/dispenser_edge_grants_refused_total\{reason="below-mark"\} [1-9]/);

    // The operator raises the mark above the highest id issued (PARSE gives its counter). The edge
    // named at most that: its journal notes what it issued once a second, and it was SIGKILLed.
    const highest = [...seen].map(BigInt).reduce((a, b) => (a > b ? a : b));
    const [, counter] = (await redis.call("PARSE", "orders", highest.toString())) as [number, number];
    expect(BigInt(refusal![1]!)).toBeLessThanOrEqual(BigInt(counter) + 1n);
    const raised = await dispenser(
      "seq",
      "raise-mark",
      "orders",
      "--dc",
      "0",
      "--to",
      String(counter + 1),
      ...ledgerArgs,
    );
    // The grants the edge refused took ranges too, so the mark may be there already: either way
    // the command says which.
    expect(raised).toMatch(/^(raised orders dc 0: nothing below counter \d+|orders dc 0 was already at \d+)/);
    // Past the edge's one-second hold on a refused sequence, draws go on, above everything issued.
    let after: string[] = [];
    for (const until = Date.now() + 10_000; after.length === 0 && Date.now() < until;) {
      after = ((await redis.call("GETN", "orders", "1000").catch(() => [])) as string[]) ?? [];
      if (after.length === 0) await new Promise((r) => setTimeout(r, 200));
    }
    take(after);
    expect(after).toHaveLength(1000);
    expect(BigInt(after[0]!)).toBeGreaterThan(highest);
  }, 180_000);
});
