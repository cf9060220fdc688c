import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DevCluster } from "@dispenser/cli";
import type { DevEndpoints } from "@dispenser/cli";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "./support/ledger-cluster.js";
import { processGone, REDIS_SKIP_REASON, redisServerAvailable } from "./support/redis-cluster.js";

// `dispenser dev --dcs 3 --start-redis`: the three-DC shape on one machine for anyone to try. Three
// ledger nodes, an edge per DC on consecutive ports, and a real Redis Cluster per DC (master and
// replica) that the edges' reserves live in; stop() leaves no redis-server behind.

const available = redisServerAvailable();
if (!available) console.warn(REDIS_SKIP_REASON);

/** A port base in [12000, 22000) such that base + 10 dc + k and 10,000 above are free. */
async function freeBase(): Promise<number> {
  const free = (port: number): Promise<boolean> =>
    new Promise((resolve) => {
      const s = createServer();
      s.once("error", () => resolve(false));
      s.listen({ host: "127.0.0.1", port, exclusive: true }, () => s.close(() => resolve(true)));
    });
  for (let tries = 0; tries < 50; tries++) {
    const base = 12_000 + Math.floor(Math.random() * 500) * 20;
    const ports = [0, 1, 2].flatMap((dc) => [0, 1].map((k) => base + 10 * dc + k));
    const all = await Promise.all([...ports, ...ports.map((p) => p + 10_000)].map(free));
    if (all.every(Boolean)) return base;
  }
  throw new Error("no free port base for the Redis nodes");
}

describe.skipIf(!available)("dispenser dev --dcs 3 --start-redis", () => {
  const dir = mkdtempSync(join(tmpdir(), "dev-dcs-"));
  let cluster: DevCluster;
  let e: DevEndpoints;
  const clients: Redis[] = [];

  beforeAll(async () => {
    const ledgerPorts = await Promise.all([0, 1, 2].map(() => freePort()));
    // Redis nodes on base + 10 dc and + 1, their cluster bus 10,000 above: a base whose twelve
    // ports are free now, below Linux's ephemeral range (32768 on).
    const redisBase = await freeBase();
    cluster = new DevCluster({
      dataDir: join(dir, "data"),
      ledgerListen: ledgerPorts.map((p) => `127.0.0.1:${p}`),
      respListen: "127.0.0.1:0",
      grpcListen: "127.0.0.1:0",
      metricsListen: "127.0.0.1:0",
      password: undefined,
      redisNodes: [],
      dcs: 3,
      startRedisPort: redisBase,
      clusterId: "dev-dcs-test",
      tickMs: 20,
      logLevel: "silent",
      leaderTimeoutMs: 20_000,
      ledgerStopGraceMs: 500,
    });
    e = await cluster.start();
    for (const edge of e.edges) {
      const port = Number(edge.resp!.slice(edge.resp!.lastIndexOf(":") + 1));
      const c = new Redis({ port, host: "127.0.0.1", lazyConnect: true });
      c.on("error", () => undefined);
      await c.connect();
      clients.push(c);
    }
  }, 60_000);

  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves each DC from its own counter space and its own Redis reserve", async () => {
    expect(e.edges.map((x) => x.dc)).toEqual([0, 1, 2]);
    expect(new Set(e.edges.flatMap((x) => x.redis)).size).toBe(6);
    await clients[0]!.call("HSET", "orders", "type", "3", "datacenters", "3");
    const seen = new Set<string>();
    for (const [dc, c] of clients.entries()) {
      for (let i = 0; i < 50; i++) {
        const id = (await c.get("orders"))!;
        expect(seen.has(id)).toBe(false);
        seen.add(id);
        const [parsedDc] = (await c.call("PARSE", "orders", id)) as [number, string];
        expect(Number(parsedDc)).toBe(dc);
      }
      const info = (await c.call("INFO", "orders")) as string;
      expect(Number(/^dc_reserve_ids:(\d+)/m.exec(info)?.[1])).toBeGreaterThan(0);
    }
    // Ordering dc needs the pool: each DC's ids grow across the draws made there.
    await clients[0]!.call("HSET", "tickets", "type", "3", "datacenters", "3", "ordering", "dc");
    for (const c of clients) {
      const ids: bigint[] = [];
      for (let i = 0; i < 20; i++) ids.push(BigInt((await c.get("tickets"))!));
      expect(ids.every((id, i) => i === 0 || id > ids[i - 1]!)).toBe(true);
    }
  });

  it("stops every redis-server it started", async () => {
    const pids = await Promise.all(
      e.edges
        .flatMap((x) => x.redis)
        .map(async (addr) => {
          const c = new Redis({ port: Number(addr.split(":")[1]), host: "127.0.0.1", lazyConnect: true });
          await c.connect();
          const pid = Number(/process_id:(\d+)/.exec(await c.info("server"))![1]);
          c.disconnect();
          return pid;
        }),
    );
    for (const c of clients.splice(0)) c.disconnect();
    await cluster.stop();
    expect(pids.filter((p) => !processGone(p))).toEqual([]);
  });
});
