import { LedgerClient } from "@dispenser/ledger";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LedgerCluster } from "./support/ledger-cluster.js";
import { createRequest, until as untilWithin } from "./support/ledger-helpers.js";

// Snapshots between real processes: a follower that fell further behind than the leader keeps
// its log gets the leader's snapshot over the peer port (in chunks), stores it in chunks, restarts
// from it, and leads from it without granting anything twice.

const until = <T>(what: string, f: () => Promise<T | undefined>): Promise<T> => untilWithin(what, f, 30_000);

describe("ledger snapshots (real processes)", () => {
  const cluster = new LedgerCluster([1, 2, 3]);
  // Snapshots every 100 entries; the leader keeps 1,000 entries behind its snapshot.
  const flags = ["--snapshot-entries", "100", "--log-level", "info"];
  let client: LedgerClient;
  let top = 0n;

  const lease = async (requestId: string, c = client): Promise<{ start: bigint; end: bigint }> => {
    const r = await c.call("leaseSegment", { sequence: "ids", dc: 0, size: 10n, requestId, kind: 0 });
    return { start: r.grant!.start, end: r.grant!.end };
  };

  beforeAll(async () => {
    await cluster.init();
    cluster.startAll(["--bootstrap", ...flags]);
    client = new LedgerClient({ endpoints: cluster.addresses(), totalTimeoutMs: 20_000 });
    await until("a leader", async () =>
      (await client.call("clusterStatus", {})).leaderId !== 0n ? true : undefined,
    );
    await client.call("createSequence", createRequest("ids"));
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await cluster.stop();
  });

  it("a follower far behind installs the leader's snapshot, restarts from it and leads from it", async () => {
    const st = await client.call("clusterStatus", {});
    const behind = [1, 2, 3].find((i) => BigInt(i) !== st.leaderId)!;
    await cluster.kill(behind);
    // 1,300 leases, 16 at a time: the leader's log no longer reaches back to the follower.
    for (let i = 0; i < 1300; i += 16) {
      const grants = await Promise.all(Array.from({ length: 16 }, (_, k) => lease(`far-${i + k}`)));
      for (const g of grants) if (g.end > top) top = g.end;
    }
    cluster.start(behind, flags);
    await until("the follower to install the leader's snapshot", () =>
      Promise.resolve(/installed snapshot from leader/.test(cluster.logs(behind)) ? true : undefined),
    );
    await until("the follower to catch up", async () => {
      const s = await client.call("clusterStatus", {});
      const m = s.members.find((x) => x.id === BigInt(behind));
      return m && m.lag === 0n && m.match > 1300n ? true : undefined;
    });
    // A restart reads the snapshot back from its chunks.
    await cluster.kill(behind);
    cluster.start(behind, flags);
    await until("the follower to catch up after its restart", async () => {
      const s = await client.call("clusterStatus", {});
      const m = s.members.find((x) => x.id === BigInt(behind));
      return m && m.lag === 0n ? true : undefined;
    });
    // It leads, with every grant of the snapshot known: the next grant starts at the top.
    await until("leadership to move to the follower", async () => {
      const s = await client.call("clusterStatus", {});
      if (s.leaderId === BigInt(behind)) return true;
      await client.call("transferLeader", { to: BigInt(behind) }).catch(() => undefined);
      return undefined;
    });
    const only = new LedgerClient({ endpoints: [cluster.address(behind)], totalTimeoutMs: 20_000 });
    try {
      const g = await lease("after-snapshot", only);
      expect(g.start).toBe(top);
    } finally {
      only.close();
    }
    expect(cluster.logs(behind)).not.toMatch(/"level":50|fatal/);
  }, 120_000);
});
