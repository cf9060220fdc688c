import { Cluster } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  processGone,
  processReaped,
  REDIS_SKIP_REASON,
  RedisCluster,
  redisServerAvailable,
} from "./support/redis-cluster.js";

// The Redis Cluster harness itself: six real redis-server processes on loopback, a master killed
// with SIGKILL, its replica promoted, and nothing left running afterwards.

const available = redisServerAvailable();
if (!available) console.warn(REDIS_SKIP_REASON);

describe.skipIf(!available)("Redis Cluster harness (6 redis-server processes)", () => {
  const cluster = new RedisCluster({ nodeTimeoutMs: 2_000 });
  let client: Cluster | undefined;

  beforeAll(async () => {
    await cluster.start();
    client = new Cluster(cluster.nodes(), {
      redisOptions: { commandTimeout: 2_000 },
      slotsRefreshTimeout: 1_000,
    });
  }, 30_000);

  afterAll(async () => {
    client?.disconnect();
    await cluster.stop();
  });

  it("serves keys across all three masters", async () => {
    const masters = new Set<number>();
    for (let i = 0; i < 30; i++) {
      await client!.set(`k${i}`, `v${i}`);
      masters.add(await cluster.masterOf(`k${i}`));
    }
    for (let i = 0; i < 30; i++) expect(await client!.get(`k${i}`)).toBe(`v${i}`);
    expect(masters.size).toBe(3);
    // Every node's pid came from its pidfile and is a real redis-server.
    for (const p of cluster.ports()) expect(cluster.isUp(p)).toBe(true);
  });

  it("promotes a replica after SIGKILL of a master, and takes the old master back as a replica", async () => {
    const key = "failover-key";
    await client!.set(key, "before");
    const dead = await cluster.masterOf(key);
    const [replica] = await cluster.replicasOf(dead);
    expect(replica).toBeDefined();
    // Make sure the value reached the replica before the master dies.
    expect(await cluster.command(dead, "WAIT", 1, 1_000)).toBe(1);

    await cluster.kill(dead, "SIGKILL");
    expect(cluster.isUp(dead)).toBe(false);
    const { newMaster, sinceKillMs } = await cluster.waitForFailover(dead, 15_000);
    console.log(`failover: ${dead} → ${newMaster} in ${sinceKillMs} ms after SIGKILL`);
    expect(newMaster).toBe(replica);
    for (const p of cluster.ports().filter((p) => p !== dead)) {
      expect((await cluster.info(p, "cluster")).get("cluster_state")).toBe("ok");
    }
    expect(await client!.get(key)).toBe("before");
    await client!.set(key, "after");
    expect(await client!.get(key)).toBe("after");

    await cluster.restart(dead);
    expect((await cluster.info(dead, "replication")).get("role")).toBe("slave");
    expect(await cluster.replicasOf(newMaster)).toContain(dead);
  });

  it("stop() kills every process and is idempotent", async () => {
    const pids = cluster.ports().map((p) => cluster.pid(p)!);
    expect(pids).toHaveLength(6);
    client!.disconnect();
    client = undefined;
    await Promise.all([cluster.stop(), cluster.stop()]);
    for (const pid of pids) expect(processGone(pid)).toBe(true);
    // Exited servers are reaped by init, not by us (they daemonized); stop() waits for that too.
    console.log(`after stop: ${pids.filter(processReaped).length}/6 reaped`);
    for (const p of cluster.ports()) expect(cluster.isUp(p)).toBe(false);
  });
});
