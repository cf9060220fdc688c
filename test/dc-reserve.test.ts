import { Cluster } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EdgeError } from "../packages/edge/src/errors.js";
import { DcReserve } from "../packages/edge/src/issuing/dc-reserve.js";
import { Dispenser } from "../packages/edge/src/issuing/dispenser.js";
import { poolKey, ReservePool } from "../packages/edge/src/redis/index.js";
import { StateLedgerPort } from "../packages/edge/test/support/state-ledger-port.js";
import type { TimedDraw } from "./support/ordering.js";
import { realTimeViolations } from "./support/ordering.js";
import { REDIS_SKIP_REASON, RedisCluster, redisServerAvailable } from "./support/redis-cluster.js";
import { issueOne } from "../packages/edge/test/support/issue-one.js";

// Two edges of one DC issuing from the DC's reserve pool in a real 6-process Redis Cluster, the
// ledger's own state machine behind them: ids unique and growing per edge, few ledger calls, and
// draws that go on when the ledger stops answering, until the reserve is used up.

const available = redisServerAvailable();
if (!available) console.warn(REDIS_SKIP_REASON);

interface Edge {
  d: Dispenser;
  reserve: DcReserve;
  client: Cluster;
  ids: bigint[];
  burnt: bigint;
}

describe.skipIf(!available)(
  "edges on a DC reserve pool (real Redis Cluster, in-process ledger state)",
  () => {
    const cluster = new RedisCluster({ nodeTimeoutMs: 3_000 });
    const ledger = new StateLedgerPort();
    const edges: Edge[] = [];

    function edge(): Edge {
      const client = new Cluster(cluster.nodes(), {
        redisOptions: { commandTimeout: 2_000 },
        slotsRefreshTimeout: 1_000,
      });
      const e = { client, ids: [], burnt: 0n } as unknown as Edge;
      e.reserve = new DcReserve({
        pool: new ReservePool(client, { callTimeoutMs: 2_000, waitMs: 500 }),
        reserveSeconds: 60,
        minWindow: 200_000n,
        now: Date.now,
        hooks: { onBurnt: (_n, ids) => (e.burnt += ids) },
      });
      e.d = new Dispenser({ ledger, dc: 1, drawTimeoutMs: 2_000, reserve: e.reserve });
      edges.push(e);
      return e;
    }

    async function drawAll(es: Edge[], name: string, n: number): Promise<number> {
      let failed = 0;
      await Promise.all(
        es.map(async (e) => {
          for (let i = 0; i < n; i++) {
            try {
              e.ids.push(await issueOne(e.d, name));
            } catch (err) {
              if (!(err instanceof EdgeError)) throw err;
              failed++;
            }
          }
        }),
      );
      return failed;
    }

    function check(es: Edge[]): { unique: boolean; increasing: boolean } {
      const all = es.flatMap((e) => e.ids);
      const increasing = es.every((e) => e.ids.every((id, i) => i === 0 || id > e.ids[i - 1]!));
      return { unique: new Set(all).size === all.length, increasing };
    }

    beforeAll(async () => {
      await cluster.start();
      ledger.create({ name: "orders", type: 3, datacenters: 2 });
    }, 60_000);

    afterAll(async () => {
      for (const e of edges) {
        await e.d.close().catch(() => undefined);
        e.client.disconnect();
      }
      await cluster.stop();
    });

    it("two edges draw from one pool: unique, growing per edge, windows from the ledger", async () => {
      const [a, b] = [edge(), edge()];
      expect(await drawAll([a, b], "orders", 30_000)).toBe(0);
      const c = check([a, b]);
      const windows = ledger.leases.filter((l) => l.name === "orders").length;
      console.log(
        `two edges: ${a.ids.length + b.ids.length} ids, ${windows} ledger leases, burnt ${a.burnt + b.burnt}`,
      );
      expect(c).toEqual({ unique: true, increasing: true });
      // Segments of ~1,000 ids come from the pool; the ledger only grants its windows.
      expect(windows).toBeLessThan(10);
      expect(await a.client.exists(poolKey("orders", 1))).toBe(1);
    }, 60_000);

    it("the ledger stops answering: both edges keep issuing from the reserve, then fail cleanly", async () => {
      const [a, b] = edges;
      const before = a!.ids.length + b!.ids.length;
      ledger.failLeases = new EdgeError("unavailable", "the ledger is cut off");
      try {
        const left = Number((await new ReservePool(a!.client).state("orders", 1))?.left ?? 0n);
        const held = (await a!.d.issuer("orders")).runway + (await b!.d.issuer("orders")).runway;
        // Everything the pool and the edges hold is served; then draws fail, none repeats.
        const failed = await drawAll([a!, b!], "orders", Math.ceil((left + Number(held)) / 2) + 2_000);
        const served = a!.ids.length + b!.ids.length - before;
        console.log(`cut off: pool held ${left}, edges ${held}; served ${served}, failed ${failed}`);
        // The pool is topped up whenever it falls under 90% of its target (here 200,000 ids at least).
        expect(left).toBeGreaterThanOrEqual(50_000);
        expect(served).toBeGreaterThanOrEqual(left);
        expect(failed).toBeGreaterThan(0);
        expect(check([a!, b!])).toEqual({ unique: true, increasing: true });
        expect(a!.reserve.sample("orders")?.onReserve).toBe(true);
      } finally {
        ledger.failLeases = undefined;
      }
      // The ledger answers again: the pool is refilled and draws resume.
      expect(await drawAll([a!, b!], "orders", 5_000)).toBe(0);
      expect(check([a!, b!])).toEqual({ unique: true, increasing: true });
      expect(a!.reserve.sample("orders")?.onReserve).toBe(false);
    }, 120_000);

    it("ordering dc: ids grow in real-time order across both edges, served from the pool", async () => {
      ledger.create({ name: "tickets", type: 3, datacenters: 2, ordering: "dc" });
      const [a, b] = edges;
      const draws: TimedDraw[] = [];
      let t = 0;
      const clock = (): number => ++t; // a logical clock: strictly increasing, shared by both edges
      await Promise.all(
        [a!, b!].map(async (e) => {
          for (let round = 0; round < 40; round++) {
            // 20 draws at once per edge: they batch into carves of exactly what waits.
            await Promise.all(
              Array.from({ length: 20 }, async () => {
                const invokedAt = clock();
                const id = await issueOne(e.d, "tickets");
                draws.push({ id, invokedAt, doneAt: clock() });
              }),
            );
          }
        }),
      );
      // Real-time order: a draw completed before another was invoked has the lower id.
      const violations = realTimeViolations(draws);
      console.log(`ordering dc: ${draws.length} draws over two edges, ${violations} ordering violations`);
      expect(new Set(draws.map((d) => d.id)).size).toBe(draws.length);
      expect(violations).toBe(0);
      expect(await a!.client.exists(poolKey("tickets", 1))).toBe(1);
    }, 60_000);

    it("a sequence's reserve_seconds: 0 draws from the ledger directly, a value of its own sizes its pool", async () => {
      const [a] = edges;
      ledger.create({ name: "direct", type: 3, datacenters: 2, reserveSeconds: 0 });
      ledger.create({ name: "sized", type: 3, datacenters: 2, reserveSeconds: 3_600 });
      const direct: bigint[] = [];
      const sized: bigint[] = [];
      for (let i = 0; i < 200; i++) {
        direct.push(await issueOne(a!.d, "direct"));
        sized.push(await issueOne(a!.d, "sized"));
      }
      expect(new Set(direct).size).toBe(200);
      expect(new Set(sized).size).toBe(200);
      expect(await a!.client.exists(poolKey("direct", 1))).toBe(0);
      expect(ledger.leases.some((l) => l.name === "direct")).toBe(true);
      expect(a!.reserve.sample("direct")).toBeUndefined();
      expect(await a!.client.exists(poolKey("sized", 1))).toBe(1);
    }, 60_000);

    it("an edge without a pool refuses ordering dc, on create, update and draw", async () => {
      const plain = new Dispenser({ ledger, dc: 1 });
      try {
        const create = plain.createSequence({ name: "nope", type: 3, datacenters: 2, ordering: "dc" });
        await expect(create).rejects.toMatchObject({ code: "failed-precondition", field: "ordering" });
        await expect(plain.updateSequence("orders", { ordering: "dc" })).rejects.toMatchObject({
          code: "failed-precondition",
        });
        await expect(issueOne(plain, "tickets")).rejects.toThrow(/served from the datacenter's reserve pool/);
      } finally {
        await plain.close();
      }
    });

    it("a pool lost from Redis is refilled from fresh windows; a new edge joins; nothing repeats", async () => {
      const [a, b] = edges;
      await drawAll([a!, b!], "orders", 3_000);
      await a!.client.del(poolKey("orders", 1));
      const c = edge();
      expect(await drawAll([a!, b!, c], "orders", 10_000)).toBe(0);
      expect(check([a!, b!, c])).toEqual({ unique: true, increasing: true });
    }, 120_000);
  },
);
