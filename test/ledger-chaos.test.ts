import { LedgerClient } from "@dispenser/ledger";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LedgerCluster } from "./support/ledger-cluster.js";
import { createRequest, sleep, waitForLeader } from "./support/ledger-helpers.js";

// Real processes, real disks, real signals: a 3-node ledger on loopback, leased from by
// concurrent clients while the leader is killed, paused and cut off. No two acknowledged grants
// may overlap, and per (sequence, dc) the mark only grows in log order.

interface Ack {
  seq: string;
  dc: number;
  start: bigint;
  end: bigint;
  fenceIndex: bigint;
}

const SEQUENCES = ["orders", "users", "tickets", "messages"];

function check(acks: Ack[]): { overlapping: number; markDecreases: number } {
  let overlapping = 0;
  let markDecreases = 0;
  const groups = new Map<string, Ack[]>();
  for (const a of acks) {
    const k = `${a.seq}/${a.dc}`;
    (groups.get(k) ?? groups.set(k, []).get(k)!).push(a);
  }
  for (const g of groups.values()) {
    const byStart = [...g].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    for (let i = 1; i < byStart.length; i++) if (byStart[i]!.start < byStart[i - 1]!.end) overlapping++;
    const byFence = [...g].sort((a, b) => (a.fenceIndex < b.fenceIndex ? -1 : 1));
    for (let i = 1; i < byFence.length; i++) if (byFence[i]!.start < byFence[i - 1]!.end) markDecreases++;
  }
  return { overlapping, markDecreases };
}

describe("ledger cluster under faults (3 processes on loopback)", () => {
  const cluster = new LedgerCluster([1, 2, 3]);
  let client: LedgerClient;

  beforeAll(async () => {
    await cluster.init();
    cluster.startAll();
    client = new LedgerClient({
      endpoints: cluster.addresses(),
      totalTimeoutMs: 20_000,
    });
    await waitForLeader(client);
    for (const name of SEQUENCES) {
      await client.call("createSequence", createRequest(name, { datacenters: 2 }));
    }
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await cluster.stop();
  });

  it("never grants overlapping ranges while the leader is killed, paused and cut off", async () => {
    const acks: Ack[] = [];
    let attempted = 0;
    let failed = 0;
    let stop = false;
    let seqNo = 0;

    const worker = async (w: number): Promise<void> => {
      const cl = new LedgerClient({
        endpoints: cluster.addresses(),
        attemptTimeoutMs: 1_000,
        totalTimeoutMs: 6_000,
      });
      try {
        while (!stop) {
          const seq = SEQUENCES[(w + seqNo) % SEQUENCES.length]!;
          const dc = seqNo % 2;
          const size = BigInt(1 + ((seqNo * 7919) % 1000));
          const requestId = `w${w}-${seqNo++}`;
          attempted++;
          try {
            const r = await cl.call("leaseSegment", { sequence: seq, dc, size, requestId, kind: 0 });
            const g = r.grant!;
            acks.push({ seq, dc, start: g.start, end: g.end, fenceIndex: g.fence!.index });
          } catch {
            failed++;
          }
        }
      } finally {
        cl.close();
      }
    };
    const workers = Array.from({ length: 6 }, (_, w) => worker(w));

    // The fault schedule: one fault at a time, each healed before the next.
    const faults: string[] = [];
    for (let round = 0; round < 6; round++) {
      await sleep(1_500);
      const leader = await waitForLeader(client);
      const kind = ["kill", "pause", "cut"][round % 3]!;
      faults.push(`${kind} ${leader}`);
      if (kind === "kill") {
        await cluster.kill(leader);
        await sleep(1_000);
        cluster.start(leader);
      } else if (kind === "pause") {
        cluster.signal(leader, "SIGSTOP");
        await sleep(2_000);
        cluster.signal(leader, "SIGCONT");
      } else {
        cluster.setLinks(leader, "blackhole");
        await sleep(2_000);
        cluster.setLinks(leader, "pass");
      }
    }
    await sleep(1_500);
    stop = true;
    await Promise.all(workers);

    const { overlapping, markDecreases } = check(acks);
    console.log(
      `ledger chaos: faults [${faults.join(", ")}]; attempted ${attempted}, acknowledged ${acks.length}, failed ${failed}, overlapping: ${overlapping}, mark decreases: ${markDecreases}`,
    );
    expect(acks.length).toBeGreaterThan(200);
    expect(overlapping).toBe(0);
    expect(markDecreases).toBe(0);

    // Restart the whole cluster: every grant is kept, new ones start above all of them.
    for (const id of cluster.ids) await cluster.kill(id);
    for (const id of cluster.ids) cluster.start(id);
    await waitForLeader(client);
    const maxEnd = new Map<string, bigint>();
    for (const a of acks) {
      const k = `${a.seq}/${a.dc}`;
      if ((maxEnd.get(k) ?? 0n) < a.end) maxEnd.set(k, a.end);
    }
    for (const [k, end] of maxEnd) {
      const [seq, dc] = k.split("/") as [string, string];
      const r = await client.call("leaseSegment", {
        sequence: seq,
        dc: Number(dc),
        size: 10n,
        requestId: `after-restart-${k}`,
        kind: 0,
      });
      expect(r.grant!.start).toBeGreaterThanOrEqual(end);
    }
  }, 120_000);

  it("answers a retried lease with the same grant (idempotency)", async () => {
    const req = { sequence: "orders", dc: 1, size: 5n, requestId: "same-id", kind: 0 };
    const a = await client.call("leaseSegment", req);
    const b = await client.call("leaseSegment", req);
    expect(b.grant).toEqual(a.grant);
  }, 30_000);

  it("refuses bad input with a clear error and changes nothing", async () => {
    const before = await client.call("getSequence", { name: "orders" });
    const bad = [
      { sequence: "no-such-sequence", dc: 0, size: 1n, requestId: "b1", kind: 0 },
      { sequence: "orders", dc: 7, size: 1n, requestId: "b2", kind: 0 },
      { sequence: "orders", dc: 0, size: 0n, requestId: "b3", kind: 0 },
      { sequence: "orders", dc: 0, size: 10n ** 12n, requestId: "b4", kind: 0 },
      { sequence: "orders", dc: 0, size: 1n, requestId: "", kind: 0 },
    ];
    for (const req of bad) {
      await expect(client.call("leaseSegment", req)).rejects.toMatchObject({
        code: expect.any(Number) as number,
      });
    }
    await expect(
      client.call("createSequence", createRequest("bad", { type: 2, length: 40 })),
    ).rejects.toThrow(/length/);
    const after = await client.call("getSequence", { name: "orders" });
    expect(after.sequence?.revision).toBe(before.sequence?.revision);
    await expect(client.call("getSequence", { name: "bad" })).rejects.toThrow(/does not exist/);
  }, 30_000);
});
