import { LedgerClient } from "@dispenser/ledger";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rmSync } from "node:fs";
import { LedgerCluster } from "./support/ledger-cluster.js";
import { createRequest, sleep, until } from "./support/ledger-helpers.js";

// A member that lost its data directory must not take part under its old id: it is refused, and
// rejoins only through a membership change, as a new member.

describe("ledger membership and amnesia (real processes)", () => {
  const cluster = new LedgerCluster([1, 2, 3, 4]);
  const initial = [1, 2, 3];
  let client: LedgerClient;

  const lease = async (requestId: string): Promise<bigint> => {
    const r = await client.call("leaseSegment", { sequence: "ids", dc: 0, size: 100n, requestId, kind: 0 });
    return r.grant!.end;
  };

  beforeAll(async () => {
    await cluster.init();
    for (const id of initial) cluster.start(id, ["--bootstrap"], initial);
    client = new LedgerClient({ endpoints: initial.map((i) => cluster.address(i)), totalTimeoutMs: 20_000 });
    await until("a leader", async () =>
      (await client.call("clusterStatus", {})).leaderId !== 0n ? true : undefined,
    );
    await client.call("createSequence", createRequest("ids"));
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await cluster.stop();
  });

  it("refuses AddMember with an address too long or malformed, and the membership stays", async () => {
    const long = `${"h".repeat(300)}:7100`;
    for (const req of [
      { id: 9n, address: long, asLearner: true, peerAddress: "" },
      { id: 9n, address: "127.0.0.1:7100", asLearner: true, peerAddress: long },
      { id: 9n, address: "127.0.0.1:7100", asLearner: true, peerAddress: "no port" },
    ])
      await expect(client.call("addMember", req)).rejects.toMatchObject({ code: 3 }); // INVALID_ARGUMENT
    const st = await client.call("clusterStatus", {});
    expect(st.members.map((m) => Number(m.id)).sort()).toEqual([1, 2, 3]);
  });

  it("refuses to start a member whose data directory is gone, unless told how to come back", async () => {
    await lease("before-wipe");
    await cluster.kill(3);
    rmSync(cluster.nodes.get(3)!.dataDir, { recursive: true, force: true });
    cluster.start(3, [], initial);
    expect(await cluster.waitExit(3)).toBe(1);
    expect(cluster.logs(3)).toMatch(/data directory .* is empty/);
  }, 30_000);

  it("refuses a wiped member that is bootstrapped again under its old id", async () => {
    cluster.start(3, ["--bootstrap"], initial);
    await sleep(1_500);
    const leaderId = Number((await client.call("clusterStatus", {})).leaderId);
    // Its messages are refused by the others, so it can neither vote nor lead.
    await until("a refusal", () =>
      Promise.resolve(
        [1, 2].some((id) => /came back with a new data directory/.test(cluster.logs(id))) ? true : undefined,
      ),
    );
    const st = await client.call("clusterStatus", {});
    expect(Number(st.leaderId)).not.toBe(3);
    expect(Number(st.leaderId)).toBe(leaderId);
    await lease("while-amnesic-member-runs");
    await cluster.kill(3);
  }, 30_000);

  it("rejoins as a new member through a membership change", async () => {
    const before = await lease("before-rejoin");
    await client.call("removeMember", { id: 3n });
    await client.call("addMember", { id: 4n, address: cluster.address(4), asLearner: true, peerAddress: "" });
    cluster.start(4, ["--join"], [1, 2, 4]);
    await until("the learner to catch up", async () => {
      const st = await client.call("clusterStatus", {});
      const m = st.members.find((x) => x.id === 4n);
      return m && m.lag === 0n && m.match > 0n ? true : undefined;
    });
    await client.call("promoteMember", { id: 4n });
    const st = await client.call("clusterStatus", {});
    expect(st.members.map((m) => Number(m.id)).sort()).toEqual([1, 2, 4]);
    // The new member now carries the quorum with one of the others: kill the leader.
    const leader = Number(st.leaderId);
    await cluster.kill(leader);
    const c2 = new LedgerClient({
      endpoints: [1, 2, 4].filter((i) => i !== leader).map((i) => cluster.address(i)),
      totalTimeoutMs: 20_000,
    });
    try {
      const r = await c2.call("leaseSegment", {
        sequence: "ids",
        dc: 0,
        size: 100n,
        requestId: "after-rejoin",
        kind: 0,
      });
      expect(r.grant!.start).toBeGreaterThanOrEqual(before);
    } finally {
      c2.close();
    }
  }, 60_000);
});
