import { Cluster, Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RedisPlaneErrorCode } from "../packages/edge/src/redis/index.js";
import {
  definitionKey,
  edgesKey,
  PLANE_SCRIPTS,
  RedisPlane,
  RedisPlaneError,
  sequenceTag,
} from "../packages/edge/src/redis/index.js";
import { parseInfo, REDIS_SKIP_REASON, RedisCluster, redisServerAvailable } from "./support/redis-cluster.js";

// The edge's Redis plane against a real 6-process Redis Cluster: revision-guarded mirrors, exact
// bigint counters, one slot per sequence, and recovery after the slot's master is SIGKILLed
// (the promoted replica has none of the scripts cached: EVALSHA must fall back to EVAL).

const available = redisServerAvailable();
if (!available) console.warn(REDIS_SKIP_REASON);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const INT64_MAX = 2n ** 63n - 1n;

async function codeOf(p: Promise<unknown>): Promise<RedisPlaneErrorCode | "resolved"> {
  try {
    await p;
    return "resolved";
  } catch (e) {
    if (e instanceof RedisPlaneError) return e.code;
    throw e;
  }
}

describe.skipIf(!available)("Redis plane on a real Redis Cluster (6 redis-server processes)", () => {
  const cluster = new RedisCluster({ nodeTimeoutMs: 2_000 });
  let client: Cluster;
  let plane: RedisPlane;

  beforeAll(async () => {
    await cluster.start();
    client = new Cluster(cluster.nodes(), {
      redisOptions: { commandTimeout: 1_000 },
      slotsRefreshTimeout: 1_000,
    });
    plane = new RedisPlane(client, { callTimeoutMs: 1_000 });
  }, 30_000);

  afterAll(async () => {
    client?.disconnect();
    await cluster.stop();
  });

  it("mirrors a definition and refuses stale or equal revisions", async () => {
    const def = { name: "orders", type: "3", starting: "1", step: "1", datacenters: "2" };
    expect(await plane.readDefinition("orders")).toBeUndefined();
    expect(await plane.mirrorDefinition(def, 5n)).toEqual({ applied: true, revision: 5n });
    expect(await plane.readDefinition("orders")).toEqual({ fields: def, revision: 5n });

    // A stale edge (older revision) and a repeat (same revision) change nothing.
    expect(await plane.mirrorDefinition({ ...def, step: "9" }, 4n)).toEqual({ applied: false, revision: 5n });
    expect(await plane.mirrorDefinition({ ...def, step: "9" }, 5n)).toEqual({ applied: false, revision: 5n });
    expect((await plane.readDefinition("orders"))?.fields["step"]).toBe("1");

    // A newer revision replaces the hash whole: fields left out disappear.
    const { datacenters: _dropped, ...newer } = { ...def, step: "2" };
    expect(await plane.mirrorDefinition(newer, 6n)).toEqual({ applied: true, revision: 6n });
    expect(await plane.readDefinition("orders")).toEqual({ fields: newer, revision: 6n });

    // Revisions compare exactly past 2^53 (Lua numbers would round these two together).
    const big = 2n ** 60n;
    expect((await plane.mirrorDefinition(newer, big + 1n)).applied).toBe(true);
    expect(await plane.mirrorDefinition(newer, big)).toEqual({ applied: false, revision: big + 1n });

    // A single Redis works too: the master serving the sequence's slot.
    const single = new Redis({
      port: await cluster.masterOf(definitionKey("orders")),
      commandTimeout: 1_000,
    });
    try {
      const onOne = new RedisPlane(single, { callTimeoutMs: 1_000 });
      expect((await onOne.readDefinition("orders"))?.revision).toBe(big + 1n);
    } finally {
      single.disconnect();
    }
  });

  it("deletes at or above the stored revision and keeps stale mirrors out with a tombstone", async () => {
    const def = { name: "users", type: "1", length: "7" };
    await plane.mirrorDefinition(def, 10n);
    expect(await plane.deleteDefinition("users", 9n)).toEqual({ applied: false, revision: 10n });
    expect((await plane.readDefinition("users"))?.revision).toBe(10n);
    expect(await plane.deleteDefinition("users", 10n)).toEqual({ applied: true, revision: 10n });
    expect(await plane.readDefinition("users")).toBeUndefined();
    // An edge still holding revision 10 cannot bring it back; the next revision can.
    expect(await plane.mirrorDefinition(def, 10n)).toEqual({ applied: false, revision: 10n });
    expect(await plane.readDefinition("users")).toBeUndefined();
    const ttlMs = Number(
      await cluster.command(await cluster.masterOf(definitionKey("users")), "PTTL", definitionKey("users")),
    );
    expect(ttlMs).toBeGreaterThan(0);
    expect(await plane.mirrorDefinition(def, 11n)).toEqual({ applied: true, revision: 11n });
    expect(await plane.readDefinition("users")).toEqual({ fields: def, revision: 11n });
    expect(
      Number(
        await cluster.command(await cluster.masterOf(definitionKey("users")), "PTTL", definitionKey("users")),
      ),
    ).toBe(-1);
  });

  it("rejects bad names, dcs, edge ids, counts and fields before sending anything", async () => {
    const bad: Promise<unknown>[] = [
      plane.readDefinition(""),
      plane.readDefinition("a b"),
      plane.readDefinition("{x}"),
      plane.readDefinition("x".repeat(65)),
      plane.mirrorDefinition({ type: "3" }, 1n),
      plane.mirrorDefinition({ name: "ok", revision: "7" }, 1n),
      plane.mirrorDefinition({ name: "ok", "a b": "1" }, 1n),
      plane.mirrorDefinition({ name: "ok", v: "x".repeat(1_025) }, 1n),
      plane.mirrorDefinition({ name: "ok" }, -1n),
      plane.deleteDefinition("ok", INT64_MAX + 1n),
      plane.reportEdgeStats("ok", -1, "e", 1n, 0n, 1),
      plane.reportEdgeStats("ok", 1_024, "e", 1n, 0n, 1),
      plane.reportEdgeStats("ok", 1.5, "e", 1n, 0n, 1),
      plane.reportEdgeStats("ok", 0, "", 1n, 0n, 1),
      plane.reportEdgeStats("ok", 0, "e".repeat(65), 1n, 0n, 1),
      plane.reportEdgeStats("ok", 0, "has space", 1n, 0n, 1),
      plane.reportEdgeStats("ok", 0, "e", -1n, 0n, 1),
      plane.reportEdgeStats("ok", 0, "e", 0n, INT64_MAX + 1n, 1),
      plane.reportEdgeStats("ok", 0, "e", 0n, 0n, -1),
      plane.dcStats("ok", 0, 1, 0),
    ];
    for (const p of bad) expect(await codeOf(p)).toBe("invalid-argument");
    expect(await plane.readDefinition("ok")).toBeUndefined();
    expect(await plane.dcStats("ok", 0, 1)).toEqual({ generated: 0n, wasted: 0n, edges: 0, edgesSeen: 0 });
  });

  it("sums stats over three edges exactly, past 2^53", async () => {
    const big = 2n ** 60n;
    const now = 1_800_000_000_000;
    expect(await plane.reportEdgeStats("tickets", 3, "edge-a", big, 5n, now)).toEqual({
      generated: big,
      wasted: 5n,
      seenMs: now,
    });
    expect(await plane.reportEdgeStats("tickets", 3, "edge-a", 1n, 0n, now - 10)).toEqual({
      generated: big + 1n,
      wasted: 5n,
      seenMs: now, // a late report never moves `seen` back
    });
    await plane.reportEdgeStats("tickets", 3, "edge-b", big + 7n, 1n, now - 1_000);
    await plane.reportEdgeStats("tickets", 3, "edge-c", 3n, 2n, now - 120_000);
    expect(await plane.dcStats("tickets", 3, now)).toEqual({
      generated: 2n * big + 11n,
      wasted: 8n,
      edges: 3,
      edgesSeen: 2, // edge-c last reported two minutes ago, outside the 60 s window
    });
    expect((await plane.dcStats("tickets", 3, now, 200_000)).edgesSeen).toBe(3);
    // Another dc of the same sequence is counted apart.
    expect(await plane.dcStats("tickets", 4, now)).toEqual({
      generated: 0n,
      wasted: 0n,
      edges: 0,
      edgesSeen: 0,
    });
  });

  it("refuses an edge past the limit and a report that would pass int64, changing nothing", async () => {
    const small = new RedisPlane(client, { callTimeoutMs: 1_000, edgesPerDcMax: 2 });
    await small.reportEdgeStats("limits", 0, "e1", 1n, 0n, 1);
    await small.reportEdgeStats("limits", 0, "e2", 1n, 0n, 1);
    expect(await codeOf(small.reportEdgeStats("limits", 0, "e3", 1n, 0n, 1))).toBe("limit-exceeded");
    await small.reportEdgeStats("limits", 0, "e2", 1n, 0n, 2); // known edges still report

    await plane.reportEdgeStats("limits", 1, "e", 0n, INT64_MAX, 1);
    // The generated part fits, the wasted part overflows: neither may stay.
    expect(await codeOf(plane.reportEdgeStats("limits", 1, "e", 5n, 1n, 2))).toBe("limit-exceeded");
    expect(await plane.dcStats("limits", 1, 2)).toEqual({
      generated: 0n,
      wasted: INT64_MAX,
      edges: 1,
      edgesSeen: 1,
    });
    expect(await plane.dcStats("limits", 0, 2)).toEqual({
      generated: 3n,
      wasted: 0n,
      edges: 2,
      edgesSeen: 2,
    });
  });

  it("keeps every key of one sequence in one slot", async () => {
    const name = "messages.v2:eu-west_1";
    const keys = [
      definitionKey(name),
      edgesKey(name, 0),
      edgesKey(name, 1_023),
      `${sequenceTag(name)}:dc:0:pool`,
      sequenceTag(name),
    ];
    const slots = await Promise.all(keys.map((k) => cluster.keySlot(k)));
    expect(new Set(slots).size).toBe(1);
    expect(slots[0]).toBe(await cluster.keySlot(`seq:${name}`));
    // And a script touching the def key really runs there.
    await plane.mirrorDefinition({ name }, 1n);
    await plane.reportEdgeStats(name, 1_023, "e", 1n, 1n, 1);
  });

  it("works again after SIGKILL of the master owning the sequence's slot", async () => {
    const name = "failover";
    const dead = await cluster.masterOf(definitionKey(name));
    const [replica] = await cluster.replicasOf(dead);
    if (replica === undefined) throw new Error(`master ${dead} has no replica`);
    expect((await plane.mirrorDefinition({ name, type: "3" }, 10n)).applied).toBe(true);
    await plane.reportEdgeStats(name, 0, "edge-a", 0n, 0n, Date.now());

    // Scripts are not replicated into a replica's cache: the one about to be promoted has none.
    const shas = [PLANE_SCRIPTS.mirror.sha1, PLANE_SCRIPTS.report.sha1];
    expect(await cluster.command(dead, "SCRIPT", "EXISTS", ...shas)).toEqual([1, 1]);
    expect(await cluster.command(replica, "SCRIPT", "EXISTS", ...shas)).toEqual([0, 0]);
    expect(await cluster.command(dead, "WAIT", 1, 1_000)).toBe(1);

    // One edge reporting +1 every 20 ms through the failover.
    let stop = false;
    let attempted = 0;
    let acked = 0n;
    let ackedAfterFailover = 0;
    let failedOver = false;
    let firstOkAfterKillMs: number | undefined;
    let killedAt = 0;
    const failures = new Map<string, number>();
    const load = (async () => {
      while (!stop) {
        attempted++;
        try {
          await plane.reportEdgeStats(name, 0, "edge-a", 1n, 0n, Date.now());
          acked++;
          if (killedAt > 0 && firstOkAfterKillMs === undefined) firstOkAfterKillMs = Date.now() - killedAt;
          if (failedOver) ackedAfterFailover++;
        } catch (e) {
          if (!(e instanceof RedisPlaneError)) throw e;
          failures.set(e.code, (failures.get(e.code) ?? 0) + 1);
        }
        await sleep(20);
      }
    })();

    await sleep(300);
    killedAt = Date.now();
    await cluster.kill(dead, "SIGKILL");
    const { newMaster, sinceKillMs } = await cluster.waitForFailover(dead, 20_000);
    failedOver = true;
    expect(newMaster).toBe(replica);
    const until = Date.now() + 10_000;
    while (ackedAfterFailover < 10 && Date.now() < until) await sleep(20);
    stop = true;
    await load;
    expect(ackedAfterFailover).toBeGreaterThanOrEqual(10);

    // What was acknowledged before WAIT survived; the rest may have been lost or (for calls that
    // failed ambiguously) applied anyway.
    expect(await plane.readDefinition(name)).toEqual({ fields: { name, type: "3" }, revision: 10n });
    const stored = (await plane.dcStats(name, 0, Date.now())).generated;
    const failed = [...failures.values()].reduce((a, b) => a + b, 0);

    // How the promoted replica got the report script: EVAL on the client's first use of its
    // connection, or EVALSHA answered with NOSCRIPT and then EVAL.
    const scriptStats = async (): Promise<{ evalsha: string; eval: string }> => {
      const stats = parseInfo(String(await cluster.command(newMaster, "INFO", "commandstats")));
      return { evalsha: stats.get("cmdstat_evalsha") ?? "none", eval: stats.get("cmdstat_eval") ?? "none" };
    };
    const afterFailover = await scriptStats();
    expect(afterFailover.eval).toMatch(/^calls=[1-9]/);

    // The NOSCRIPT path on a connection that has used the script: with the cache emptied under
    // it, EVALSHA fails once and EVAL takes over, and the call still succeeds.
    await cluster.command(newMaster, "SCRIPT", "FLUSH");
    await cluster.command(newMaster, "CONFIG", "RESETSTAT");
    await plane.reportEdgeStats(name, 0, "edge-a", 0n, 1n, Date.now());
    const afterFlush = await scriptStats();
    expect(afterFlush.evalsha).toMatch(/(failed|rejected)_calls=[1-9]/);
    expect(afterFlush.eval).toMatch(/^calls=1,/);
    expect(await cluster.command(newMaster, "SCRIPT", "EXISTS", PLANE_SCRIPTS.report.sha1)).toEqual([1]);
    expect((await plane.mirrorDefinition({ name, type: "3", step: "2" }, 11n)).applied).toBe(true);

    console.log(
      [
        `failover ${dead} → ${newMaster}: slots served again ${sinceKillMs} ms after SIGKILL;`,
        `first successful report ${firstOkAfterKillMs ?? "never"} ms after SIGKILL`,
        `reports: ${attempted} attempted, ${acked} acknowledged, ${failed} failed` +
          ` (${[...failures].map(([c, n]) => `${c}: ${n}`).join(", ") || "none"})`,
        `counter stored after failover: ${stored} (acknowledged ${acked}; ` +
          `${stored < acked ? `${acked - stored} acknowledged increments lost` : `${stored - acked} from failed calls that ran`})`,
        `scripts on the new master after failover: eval {${afterFailover.eval}}, evalsha {${afterFailover.evalsha}}`,
        `after SCRIPT FLUSH: eval {${afterFlush.eval}}, evalsha {${afterFlush.evalsha}}`,
      ].join("\n"),
    );
  });
});
