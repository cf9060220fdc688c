import { LedgerClient } from "@dispenser/ledger";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWhenUp, sleep, waitForLeader } from "./support/ledger-helpers.js";
import { REDIS_SKIP_REASON, redisServerAvailable } from "./support/redis-cluster.js";
import { DcLoad } from "./support/dc-load.js";
import { ThreeDcs } from "./support/three-dc.js";

// Three datacenters as three datacenters: a voter, two edges and a 6-node Redis Cluster each,
// proxies on every inter-DC link. One DC is cut off from the other two under load on each of its
// edges, for longer than the edges' own segments last: it goes on issuing from its reserve, the
// other two keep issuing (they keep the ledger's quorum), and after the heal nothing repeated.
// Then the DC of the ledger's leader is lost whole (voter, edges, Redis): the other two go on
// issuing, and a sequence created after the loss (a ledger write) is served in both.

const available = redisServerAvailable();
if (!available) console.warn(REDIS_SKIP_REASON);

const CUT_MS = 40_000;

describe.skipIf(!available)("three datacenters (real processes)", () => {
  const dcs = new ThreeDcs({ edgesPerDc: 2, edgeFlags: ["--reserve-seconds", "60"] });

  beforeAll(async () => {
    await dcs.start();
    await createWhenUp(dcs.edges[0]!.client, "orders", ["type", "3", "datacenters", "3"]);
  }, 120_000);

  afterAll(async () => {
    await dcs.stop();
  }, 60_000);

  it("a DC cut off from the other two keeps issuing from its reserve; the others go on; nothing repeats", async () => {
    // 1,000 ids/s per edge: GETN 100 every 100 ms.
    const load = new DcLoad("orders").start(dcs.edges);
    const { served, failed } = load;
    // Warm up: the edges measure the DC's rate and fill its reserve with a minute of it.
    await sleep(15_000);
    const before = [...served];
    const failedBefore = [...failed];
    dcs.setLinks(2, "blackhole");
    await sleep(CUT_MS);
    const during = served.map((n, dc) => n - before[dc]!);
    const failedDuring = failed.map((n, dc) => n - failedBefore[dc]!);
    dcs.setLinks(2, "pass");
    await sleep(3_000);
    await load.stop();
    console.log(
      `three DCs, dc 2 cut off ${CUT_MS / 1000} s: ids per DC while cut ${during.join("/")}, ` +
        `failed draws while cut ${failedDuring.join("/")}, failed in all ${failed.join("/")}, ` +
        `${load.seen.size} ids, duplicated ${load.duplicated}`,
    );
    expect(load.duplicated).toBe(0);
    // The cut-off DC served all along (longer than its edges' own segments last).
    expect(failedDuring[2]).toBe(0);
    expect(during[2]).toBeGreaterThan(60_000);
    // The other two kept the quorum and went on.
    expect(during[0]).toBeGreaterThan(60_000);
    expect(during[1]).toBeGreaterThan(60_000);
    expect(failed).toEqual([0, 0, 0]);
  }, 180_000);
  it("the loss of a whole DC (the leader's): the other two keep issuing, the ledger keeps granting", async () => {
    const client = new LedgerClient({ endpoints: dcs.ledger.addresses() });
    const leader = await waitForLeader(client);
    client.close();
    const lost = leader - 1;
    const alive = [0, 1, 2].filter((dc) => dc !== lost);
    const load = new DcLoad("orders").start(alive.flatMap((dc) => dcs.edgesOf(dc)));
    const { served, failed } = load;
    await sleep(2_000);
    const before = [...served];
    await dcs.loseDc(lost);
    // A ledger write after the loss: the two voters left elect a leader and commit.
    const survivor = dcs.edgesOf(alive[0]!)[0]!;
    await createWhenUp(survivor.client, "after-loss", ["type", "3", "datacenters", "3"]);
    const fresh = new Set<string>();
    for (const dc of alive)
      for (const e of dcs.edgesOf(dc))
        for (const id of (await e.client.call("GETN", "after-loss", "100")) as string[]) fresh.add(id);
    await sleep(5_000);
    await load.stop();
    const after = served.map((n, dc) => n - before[dc]!);
    console.log(
      `dc ${lost} (the leader's) lost whole: ids per DC after the loss ${after.join("/")}, ` +
        `failed draws ${failed.join("/")}, ${fresh.size} ids of a sequence created after the loss, ` +
        `duplicated ${load.duplicated}`,
    );
    expect(load.duplicated).toBe(0);
    for (const dc of alive) {
      expect(failed[dc]).toBe(0);
      expect(after[dc]).toBeGreaterThan(5_000);
    }
    expect(fresh.size).toBe(100 * 2 * alive.length);
  }, 120_000);
});
