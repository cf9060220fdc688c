import { Cluster } from "ioredis";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LedgerState } from "@dispenser/ledger/state";
import { Dispenser } from "../packages/edge/src/issuing/dispenser.js";
import { PlaneReporter } from "../packages/edge/src/plane-reporter.js";
import { RedisPlane } from "../packages/edge/src/redis/index.js";
import { StateLedgerPort } from "../packages/edge/test/support/state-ledger-port.js";
import { REDIS_SKIP_REASON, RedisCluster, redisServerAvailable } from "./support/redis-cluster.js";
import { issueOne } from "../packages/edge/test/support/issue-one.js";

// What the DC's edges remember of the ledger is kept in its Redis too: a fresh edge (no journal,
// a new pod) reads it before its first lease, so a ledger that lost its data, or one restored from
// an old backup, is refused by it as by the edges that drew before. Real Redis Cluster; the
// ledger's own state machine in process.

const available = redisServerAvailable();
if (!available) console.warn(REDIS_SKIP_REASON);

describe.skipIf(!available)("the DC's shared grant guard (real Redis Cluster)", () => {
  const cluster = new RedisCluster({ nodeTimeoutMs: 3_000 });
  let client: Cluster;
  let plane: RedisPlane;
  const closers: (() => Promise<unknown>)[] = [];

  function edge(ledger: StateLedgerPort, refusals: string[]): Dispenser {
    const d = new Dispenser({
      ledger,
      dc: 0,
      drawTimeoutMs: 1_000,
      dcGuard: (name, dc) => plane.readGuard(name, dc),
      onGrantRefused: (_name, reason) => refusals.push(reason),
    });
    const reporter = new PlaneReporter({
      plane,
      dispenser: d,
      logger: pino({ level: "silent" }),
      intervalMs: 50,
    });
    reporter.start();
    closers.push(
      () => reporter.stop(),
      () => d.close(),
    );
    return d;
  }

  beforeAll(async () => {
    await cluster.start();
    client = new Cluster(cluster.nodes(), { redisOptions: { commandTimeout: 2_000 } });
    plane = new RedisPlane(client, { callTimeoutMs: 2_000 });
  }, 60_000);

  afterAll(async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
    client?.disconnect();
    await cluster.stop();
  });

  it("a fresh edge refuses a wiped ledger and an old backup, as the edge that drew before does", async () => {
    const first = new StateLedgerPort();
    first.create({ name: "orders", type: 3 });
    const a = edge(first, []);
    await issueOne(a, "orders");
    const backup = first.state.snapshot(); // the identity, and marks of one lease
    for (let i = 0; i < 3000; i++) await issueOne(a, "orders");
    const issued = (await a.issuer("orders")).issuedMark;
    // The edge's reporter shares its mark and the ledger's identity with the DC.
    let g = await plane.readGuard("orders", 0);
    for (let i = 0; i < 100 && (g === undefined || g.mark < issued); i++) {
      await new Promise((r) => setTimeout(r, 50));
      g = await plane.readGuard("orders", 0);
    }
    expect(g).toEqual({ identity: first.state.identity, mark: issued });

    // The ledger lost every volume and was bootstrapped afresh: another identity.
    const wiped = new StateLedgerPort();
    wiped.create({ name: "orders", type: 3 });
    const refusedB: string[] = [];
    const b = edge(wiped, refusedB);
    await expect(issueOne(b, "orders")).rejects.toThrow(/answered as cluster .* drawn ids from cluster/);
    expect(refusedB).toEqual(["identity"]);

    // Restored from the backup: the same identity, marks from before 3,000 ids were issued.
    const restored = new StateLedgerPort(LedgerState.restore(backup));
    const refusedC: string[] = [];
    const c = edge(restored, refusedC);
    await expect(issueOne(c, "orders")).rejects.toThrow(new RegExp(`below ${issued}`));
    expect(refusedC).toEqual(["below-mark"]);
  });
});
