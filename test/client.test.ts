import type { LedgerClient } from "@dispenser/ledger";
import type { CreateSequenceRequest, CreateSequenceResponse } from "@dispenser/proto";
import { DispenserClient, Ordering } from "@dispenser/proto";
import type { Dispenser, DispenserOptions } from "@dispenser/client";
import { createDispenser, DispenserError } from "@dispenser/client";
import type { ServiceError } from "@grpc/grpc-js";
import { credentials } from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { EdgeProcess, startLedgerAndEdge } from "./support/edge-process.js";
import { LedgerCluster } from "./support/ledger-cluster.js";
import { createRequest } from "./support/ledger-helpers.js";

// The client SDK as a service uses it: a real edge process in front of a real 3-node ledger,
// sequences created through the edge's gRPC CreateSequence, ids drawn from leased ranges.

async function codeOf(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (e instanceof DispenserError) return e.code;
  throw new Error(`expected a DispenserError, got ${String(e)}`);
}

function expectIncreasing(ids: readonly bigint[]): void {
  for (let i = 1; i < ids.length; i++) {
    if (ids[i]! <= ids[i - 1]!) throw new Error(`ids go back at ${i}: ${ids[i - 1]} then ${ids[i]}`);
  }
}

describe("client SDK (real edge and ledger processes on loopback)", () => {
  const ledger = new LedgerCluster([1, 2, 3]);
  let edge: EdgeProcess;
  let lc: LedgerClient;
  let admin: DispenserClient;
  const clients: Dispenser[] = [];

  const client = (o: Partial<DispenserOptions> & Pick<DispenserOptions, "sequence">): Dispenser => {
    const d = createDispenser({ endpoints: [edge.grpcAddress], callTimeoutMs: 2_000, ...o });
    clients.push(d);
    return d;
  };

  const create = (req: CreateSequenceRequest): Promise<CreateSequenceResponse> =>
    new Promise((resolve, reject) =>
      admin.createSequence(req, (e: ServiceError | null, r: CreateSequenceResponse) =>
        e ? reject(e) : resolve(r),
      ),
    );

  beforeAll(async () => {
    ({ lc, edge } = await startLedgerAndEdge(ledger));
    admin = new DispenserClient(edge.grpcAddress, credentials.createInsecure());
  }, 60_000);

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
  });

  afterAll(async () => {
    admin?.close();
    lc?.close();
    await edge?.stop("SIGKILL").catch(() => undefined);
    await ledger.stop();
  });

  it("two clients draw 100k ids each at once: all unique, increasing per client", async () => {
    await create(createRequest("orders"));
    const a = client({ sequence: "orders" });
    const b = client({ sequence: "orders" });
    const n = 100_000;
    const drawOne = async (d: Dispenser): Promise<bigint[]> => {
      const ids: bigint[] = [];
      while (ids.length < n) ids.push(await d.next());
      return ids;
    };
    const drawBatches = async (d: Dispenser): Promise<bigint[]> => {
      const ids: bigint[] = [];
      while (ids.length < n) {
        ids.push(...(await d.nextBatch(Math.min(777, n - ids.length))));
        // Interleave the synchronous draw, so both paths share one buffer.
        const id = d.nextSync();
        if (id !== undefined && ids.length < n) ids.push(id);
      }
      return ids;
    };
    const [ia, ib] = await Promise.all([drawOne(a), drawBatches(b)]);
    expect(ia).toHaveLength(n);
    expect(ib).toHaveLength(n);
    expectIncreasing(ia);
    expectIncreasing(ib);
    expect(new Set([...ia, ...ib]).size).toBe(2 * n);
    // Ranges, not calls per id.
    expect(a.stats().ranges).toBeLessThan(100);
    expect(a.stats()).toMatchObject({ issued: BigInt(n), wasted: 0n, source: "lease" });
  });

  it("answers an unknown sequence with not-found and a bad count with invalid-argument", async () => {
    expect(await codeOf(client({ sequence: "no-such-sequence" }).next())).toBe("not-found");
    await create(createRequest("errs"));
    const d = client({ sequence: "errs" });
    expect(await codeOf(d.nextBatch(0))).toBe("invalid-argument");
    expect(await d.next()).toBe(1n);
    expect(await codeOf(d.parse("not-an-id"))).toBe("invalid-argument");
  });

  it("a tiny type 2 sequence runs out with exhausted, never a wrap", async () => {
    await create(createRequest("tiny", { type: 2, length: 1, starting: 1n }));
    const d = client({ sequence: "tiny" });
    const ids = await d.nextBatch(9);
    expect(ids).toEqual([1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n, 9n]);
    expect(await codeOf(d.next())).toBe("exhausted");
    expect(await codeOf(d.nextBatch(2))).toBe("exhausted");
    expect(d.nextSync()).toBeUndefined();
    const other = client({ sequence: "tiny" });
    expect(await codeOf(other.next())).toBe("exhausted");
  });

  it("gives ids as text and parses them through the edge", async () => {
    await create(createRequest("order_id", { type: 2, length: 12, starting: 100_000_000_000n }));
    const d = client({ sequence: "order_id" });
    expect(await d.nextString()).toBe("100000000000");
    const id = await d.next();
    expect(id).toBe(100_000_000_001n);
    expect(await d.parse(id)).toEqual({ dc: 0, counter: 1n });
    expect(await d.parse("100000000002")).toEqual({ dc: 0, counter: 2n });
    expect(await d.describe()).toMatchObject({ type: 2, length: 12, ordering: "edge" });
  });

  it("type 1 and ordering global are served from IssueBatch batches, or per id in direct mode", async () => {
    await create(createRequest("random7", { type: 1, length: 7, starting: 1_000_000n }));
    const r = client({ sequence: "random7", initialRangeSize: 500 });
    const ids = await r.nextBatch(2_000);
    expect(new Set(ids).size).toBe(2_000);
    for (const id of ids) expect(id >= 1_000_000n && id <= 9_999_999n).toBe(true);
    expect(r.stats().source).toBe("issue-batch");

    await create(createRequest("ticket", { ordering: Ordering.ORDERING_GLOBAL }));
    const g = client({ sequence: "ticket", mode: "direct" });
    const seen: bigint[] = [];
    for (let i = 0; i < 20; i++) seen.push(await g.next());
    seen.push(...(await g.nextBatch(50)));
    expectIncreasing(seen);
    expect(g.stats().runway).toBe(0n);
  });

  it("close() discards the buffer as wasted and later draws fail with code closed", async () => {
    await create(createRequest("closing"));
    const d = client({ sequence: "closing", initialRangeSize: 1_000, prefetchAt: 1 });
    expect(await d.next()).toBe(1n);
    await d.close();
    expect(d.stats()).toMatchObject({ issued: 1n, wasted: 999n, runway: 0n });
    const err = await d.next().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DispenserError);
    expect((err as DispenserError).code).toBe("closed");
    expect((err as DispenserError).message).toMatch(/closed/);
    expect(d.nextSync()).toBeUndefined();
    // The next client starts above the discarded range: the edge never hands it out again.
    expect(await client({ sequence: "closing" }).next()).toBeGreaterThan(1_000n);
  });

  it("fails over to the next edge when the one in use is killed mid-draw: no error, no repeat", async () => {
    await create(createRequest("failover"));
    const doomed = new EdgeProcess(ledger.addresses());
    await doomed.init();
    await doomed.start();
    try {
      // Small ranges, so the client goes back to the edge often and meets the kill.
      const d = client({
        sequence: "failover",
        endpoints: [doomed.grpcAddress, edge.grpcAddress],
        initialRangeSize: 64,
        minRangeSize: 64,
        maxRangeSize: 256,
        callTimeoutMs: 1_000,
      });
      const ids: bigint[] = [];
      let killed: Promise<unknown> | undefined;
      while (ids.length < 60_000) {
        ids.push(await d.next());
        if (ids.length === 20_000) {
          expect(d.stats().endpoint).toBe(doomed.grpcAddress);
          killed = doomed.stop("SIGKILL");
        }
      }
      await killed;
      expect(d.stats().endpoint).toBe(edge.grpcAddress);
      expect(new Set(ids).size).toBe(ids.length);
      expectIncreasing(ids);
    } finally {
      await doomed.stop("SIGKILL").catch(() => undefined);
    }
  });
});
