import { Cluster } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CarveOutcome, PoolWindow } from "../packages/edge/src/redis/index.js";
import {
  keySlot,
  poolKey,
  ReservePool,
  RedisPlaneError,
  sequenceTag,
} from "../packages/edge/src/redis/index.js";
import { REDIS_SKIP_REASON, RedisCluster, redisServerAvailable } from "./support/redis-cluster.js";

// A DC's reserve pool against a real 6-process Redis Cluster: windows only go up, carves are
// confirmed on the replicas (WAIT) or burnt, and no failover, restart or rollback makes two
// confirmed carves overlap. Each case prints what it carved and burnt.

const available = redisServerAvailable();
if (!available) console.warn(REDIS_SKIP_REASON);

const fence = { term: 1n, index: 1n };
const win = (start: bigint, end: bigint): PoolWindow => ({ start, end, fence });

interface Tally {
  carved: [bigint, bigint][];
  burnt: number;
  errors: number;
}

/** Carves one chunk and records it; a doubt (anything but `carved`) issues nothing. */
async function carveInto(
  pool: ReservePool,
  name: string,
  n: number,
  t: Tally,
): Promise<CarveOutcome | undefined> {
  try {
    const r = await pool.carve(name, 0, n);
    if (r.kind === "carved") t.carved.push([r.start, r.start + BigInt(r.count)]);
    else if (r.kind === "unconfirmed") t.burnt++;
    return r;
  } catch (e) {
    if (!(e instanceof RedisPlaneError)) throw e;
    t.errors++;
    return undefined;
  }
}

function overlaps(ranges: [bigint, bigint][]): number {
  const s = [...ranges].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  let n = 0;
  for (let i = 1; i < s.length; i++) if (s[i]![0] < s[i - 1]![1]) n++;
  return n;
}

describe.skipIf(!available)("DC reserve pool on a real Redis Cluster (6 redis-server processes)", () => {
  const cluster = new RedisCluster({ nodeTimeoutMs: 3_000 });
  let client: Cluster;
  let pool: ReservePool;

  beforeAll(async () => {
    await cluster.start();
    client = new Cluster(cluster.nodes(), {
      redisOptions: { commandTimeout: 2_000 },
      slotsRefreshTimeout: 1_000,
      slotsRefreshInterval: 500,
    });
    await client.ping();
    pool = new ReservePool(client, { callTimeoutMs: 2_000, waitMs: 500 });
  }, 60_000);

  afterAll(async () => {
    client?.disconnect();
    await cluster.stop();
  });

  it("carves the windows in order, refuses a window below the top, and says when it is empty", async () => {
    expect(await pool.carve("orders", 0, 10)).toEqual({ kind: "missing" });
    expect(await pool.add("orders", 0, win(100n, 125n))).toMatchObject({ kind: "added" });
    expect(await pool.add("orders", 0, win(110n, 130n))).toMatchObject({ kind: "below", top: 125n });
    expect(await pool.add("orders", 0, win(200n, 210n))).toMatchObject({ kind: "added" });
    const got: string[] = [];
    for (;;) {
      const r = await pool.carve("orders", 0, 10);
      if (r.kind !== "carved") {
        expect(r).toMatchObject({ kind: "empty", left: 0, carved: 35 });
        break;
      }
      expect(r.replicas).toBe(1); // confirmed on the master's replica
      got.push(`${r.start}+${r.count}`);
    }
    expect(got).toEqual(["100+10", "110+10", "120+5", "200+10"]);
    // A caller whose own order needs ids at or above a floor: what lies below is skipped, burnt.
    await pool.add("orders", 0, win(300n, 400n));
    await pool.add("orders", 0, win(500n, 600n));
    // Unless skipping is asked for, nothing is carved when the next ids lie below the floor.
    expect(await pool.carve("orders", 0, 10, 550n, false)).toEqual({ kind: "below-floor" });
    // ...and a window it passed over on the way (carved out already) stays passed over.
    expect(await pool.carve("orders", 0, 10, 550n, false)).toEqual({ kind: "below-floor" });
    expect(await pool.carve("orders", 0, 10, 300n, false)).toMatchObject({
      start: 300n,
      count: 10,
      skipped: 0,
    });
    const above = await pool.carve("orders", 0, 10, 550n);
    expect(above).toMatchObject({ kind: "carved", start: 550n, count: 10, skipped: 140, left: 40 });
    expect(await pool.carve("orders", 0, 100)).toMatchObject({
      kind: "carved",
      start: 560n,
      count: 40,
      left: 0,
    });
    expect(await pool.state("orders", 0)).toMatchObject({ left: 0n });
    // The pool lives in the sequence's slot, with its other keys.
    expect(keySlot(poolKey("orders", 0))).toBe(keySlot(`${sequenceTag("orders")}:def`));
    expect(keySlot(poolKey("orders", 0))).toBe(await cluster.keySlot(poolKey("orders", 0)));
  });

  it("holds at most 16 windows and refuses bad windows and carves before sending anything", async () => {
    for (let i = 0n; i < 16n; i++)
      expect(await pool.add("full", 0, win(i * 10n, i * 10n + 5n))).toMatchObject({ kind: "added" });
    expect(await pool.add("full", 0, win(1000n, 1001n))).toMatchObject({ kind: "full" });
    expect(await pool.state("full", 0)).toMatchObject({ left: 80n, windows: 16 });
    for (const bad of [win(5n, 5n), win(-1n, 3n), win(0n, 2n ** 52n + 1n)])
      await expect(pool.add("bad", 0, bad)).rejects.toMatchObject({ code: "invalid-argument" });
    await expect(pool.carve("bad", 0, 0)).rejects.toMatchObject({ code: "invalid-argument" });
    await expect(pool.carve("bad name", 0, 1)).rejects.toMatchObject({ code: "invalid-argument" });
    await expect(pool.carve("bad", 1024, 1)).rejects.toMatchObject({ code: "invalid-argument" });
    expect(await client.exists(poolKey("bad", 0))).toBe(0);
  });

  it("a master with fewer replicas than every carve must reach: nothing is carved, nothing burnt", async () => {
    await pool.add("lonely", 0, win(0n, 1000n));
    // Each master of this cluster has one replica; ask for two.
    const strict = new ReservePool(client, { callTimeoutMs: 2_000, waitMs: 500, minReplicas: 2 });
    expect(await strict.carve("lonely", 0, 100)).toEqual({ kind: "no-replicas", connected: 1, wanted: 2 });
    expect(await pool.state("lonely", 0)).toMatchObject({ left: 1000n });
    expect(await pool.carve("lonely", 0, 100)).toMatchObject({ kind: "carved", start: 0n, count: 100 });
  });

  it("a pool written by another server process (a failover, a restart from disk) is burnt", async () => {
    await pool.add("moved", 0, win(0n, 1000n));
    const t: Tally = { carved: [], burnt: 0, errors: 0 };
    await carveInto(pool, "moved", 100, t);
    // As if a replica that missed later carves had been promoted: another run_id wrote the pool.
    await client.hset(poolKey("moved", 0), "runid", "0".repeat(40));
    expect(await pool.carve("moved", 0, 100)).toEqual({
      kind: "rolled-back",
      why: "master-changed",
      dropped: 900,
    });
    expect(await client.exists(poolKey("moved", 0))).toBe(0);
    // An add does the same: the window goes into a new pool.
    await pool.add("moved", 0, win(1000n, 2000n));
    await client.hset(poolKey("moved", 0), "runid", "0".repeat(40));
    expect(await pool.add("moved", 0, win(2000n, 3000n))).toMatchObject({ kind: "added", dropped: 1000 });
    expect(await pool.carve("moved", 0, 100)).toMatchObject({ kind: "carved", start: 2000n });
  });

  it("a pool restored from an old copy (fewer carves than this edge saw) is deleted, not carved again", async () => {
    await pool.add("rolled", 0, win(0n, 1000n));
    const t: Tally = { carved: [], burnt: 0, errors: 0 };
    for (let i = 0; i < 3; i++) await carveInto(pool, "rolled", 100, t);
    // An operator restores Redis from a copy taken after the first carve.
    await client.hset(poolKey("rolled", 0), "carves", "1", "used", "100");
    expect(await pool.carve("rolled", 0, 100)).toEqual({
      kind: "rolled-back",
      why: "rolled-back",
      dropped: 900,
    });
    expect(await client.exists(poolKey("rolled", 0))).toBe(0);
    // Another edge that never saw it cannot tell; it finds the pool gone and refills it fresh.
    expect(await pool.carve("rolled", 0, 100)).toEqual({ kind: "missing" });
    expect(t.carved).toEqual([
      [0n, 100n],
      [100n, 200n],
      [200n, 300n],
    ]);
  });

  it("a carve the replica does not confirm in time is burnt; confirmed carves never overlap", async () => {
    await pool.add("paused", 0, win(0n, 1_000_000n));
    const master = await cluster.masterOf(poolKey("paused", 0));
    const [replica] = await cluster.replicasOf(master);
    const t: Tally = { carved: [], burnt: 0, errors: 0 };
    await carveInto(pool, "paused", 100, t);
    await cluster.kill(replica!, "SIGSTOP");
    try {
      const r = await carveInto(pool, "paused", 100, t);
      expect(r).toEqual({ kind: "unconfirmed", acked: 0, wanted: 1 });
    } finally {
      await cluster.kill(replica!, "SIGCONT");
    }
    await carveInto(pool, "paused", 100, t);
    console.log(`paused replica: carved ${t.carved.length}, burnt ${t.burnt}`);
    expect(t.burnt).toBe(1);
    expect(t.carved).toEqual([
      [0n, 100n],
      [200n, 300n],
    ]);
  });

  it("SIGKILL of the slot's master under carving: the pool is burnt and refilled above every confirmed carve", async () => {
    // The ledger's part: each new window lies above every earlier one.
    let nextWindow = 0n;
    const fresh = (): PoolWindow => win(nextWindow, (nextWindow += 10_000_000n));
    await pool.add("failover", 0, fresh());
    const master = await cluster.masterOf(poolKey("failover", 0));
    const t: Tally = { carved: [], burnt: 0, errors: 0 };
    let stop = false;
    let refills = 0;
    const carvers = Array.from({ length: 4 }, async () => {
      while (!stop) {
        const r = await carveInto(pool, "failover", 50, t);
        if (r?.kind === "missing" || r?.kind === "rolled-back" || r?.kind === "empty") {
          refills++;
          await pool.add("failover", 0, fresh()).catch(() => undefined);
        }
        // No master for the slot yet: ask again a little later, as an edge would.
        await new Promise((res) => (r === undefined ? setTimeout(res, 10) : setImmediate(res)));
      }
    });
    while (t.carved.length < 50) await new Promise((r) => setTimeout(r, 20));
    const before = t.carved.length;
    await cluster.kill(master);
    await cluster.waitForFailover(master);
    // The promoted replica has no replica of its own: no carve can be confirmed (they are burnt)
    // until the old master is back, as its replica. Its first carve finds a pool another server
    // process wrote (it may lack carves the dead master confirmed on a replica it never had): the
    // pool is burnt and refilled from a fresh window (no script cached there: EVAL fallback).
    await cluster.restart(master);
    const until = Date.now() + 20_000;
    while (t.carved.length < before + 50 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    stop = true;
    await Promise.all(carvers);
    console.log(
      `failover: carved ${t.carved.length}, burnt ${t.burnt}, failed calls ${t.errors}, refills ${refills}`,
    );
    expect(t.carved.length).toBeGreaterThanOrEqual(before + 50);
    expect(refills).toBeGreaterThanOrEqual(1);
    expect(overlaps(t.carved)).toBe(0);
  }, 90_000);

  it("a master restarted empty loses the pool: it is refilled from a fresh window, nothing carved twice", async () => {
    await pool.add("amnesia", 0, win(0n, 1_000_000n));
    const t: Tally = { carved: [], burnt: 0, errors: 0 };
    for (let i = 0; i < 20; i++) await carveInto(pool, "amnesia", 100, t);
    const master = await cluster.masterOf(poolKey("amnesia", 0));
    await cluster.kill(master);
    await cluster.restart(master); // before the replica could take over: back empty, still master
    await cluster.waitHealthy();
    const r = await pool.carve("amnesia", 0, 100).catch((e: unknown) => e);
    // Either the pool is gone (the master came back empty, its replica synced from it) or a
    // failover kept it; in both cases nothing below what was confirmed comes back.
    const lost = r instanceof Error || (r as CarveOutcome).kind !== "carved";
    console.log(`master restarted: the pool was ${lost ? "lost" : "kept by a failover"}`);
    if (lost) {
      expect(await client.exists(poolKey("amnesia", 0))).toBe(0);
      // The ledger grants the next window above everything: the pool starts again there.
      await pool.add("amnesia", 0, win(1_000_000n, 2_000_000n));
    } else {
      const c = r as Extract<CarveOutcome, { kind: "carved" }>;
      t.carved.push([c.start, c.start + BigInt(c.count)]);
    }
    for (let i = 0; i < 5; i++) await carveInto(pool, "amnesia", 100, t);
    console.log(`master restarted: carved ${t.carved.length}, burnt ${t.burnt}, failed calls ${t.errors}`);
    expect(overlaps(t.carved)).toBe(0);
    expect(t.carved.length).toBeGreaterThanOrEqual(25);
  }, 90_000);
});
