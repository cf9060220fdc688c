// The client against an in-process fake edge: the buffer, prefetch, waiting, failover, the IssueBatch
// fallback, direct mode, error codes, close, and option checks. The real edge is in
// test/client.test.ts.
import { ErrorReason, Ordering, SequenceType } from "@dispenser/proto";
import { status } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import type { Dispenser, DispenserOptions } from "../src/index.js";
import { createDispenser, DispenserError, parseIdString, toIdString } from "../src/index.js";
import { codeOf } from "../src/errors.js";
import { RangeSizer } from "@dispenser/domain";
import { FakeEdge } from "./fake-edge.js";

const edges: FakeEdge[] = [];
const clients: Dispenser[] = [];

async function edge(): Promise<FakeEdge> {
  const e = new FakeEdge();
  await e.start();
  edges.push(e);
  return e;
}

function client(o: Partial<DispenserOptions> & Pick<DispenserOptions, "endpoints">): Dispenser {
  const d = createDispenser({ sequence: "s", callTimeoutMs: 500, drawTimeoutMs: 2_000, ...o });
  clients.push(d);
  return d;
}

async function codeOfRejection(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof DispenserError) return e.code;
    throw e;
  }
  throw new Error("expected a rejection");
}

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const e of edges.splice(0)) e.stop();
});

describe("buffered draws", () => {
  it("hands out one leased range locally: one Lease, no call per id, ids in order", async () => {
    const e = await edge();
    e.define("s");
    const d = client({ endpoints: [e.address], initialRangeSize: 1_000, prefetchAt: 1 });
    const first = await d.next();
    expect(first).toBe(1n);
    for (let i = 2n; i <= 999n; i++) expect(d.nextSync()).toBe(i);
    expect(e.calls["lease"]).toBe(1);
    expect(e.calls["describeSequence"]).toBe(1);
    expect(d.stats()).toMatchObject({ issued: 999n, leased: 1_000n, runway: 1n, ranges: 1, source: "lease" });
  });

  it("leases the next range once the prefetch share is used", async () => {
    const e = await edge();
    e.define("s");
    const d = client({ endpoints: [e.address], initialRangeSize: 100, prefetchAt: 0.5 });
    await d.ready();
    for (let i = 0; i < 49; i++) d.nextSync();
    expect(e.calls["lease"]).toBe(1);
    d.nextSync(); // the 50th: half used
    await expect.poll(() => d.stats().ranges).toBe(2);
    const rest: bigint[] = [];
    for (let i = 0; i < 150; i++) rest.push(d.nextSync()!);
    expect(rest[0]).toBe(51n);
    expect(rest.at(-1)).toBe(200n);
  });

  it("nextBatch spans ranges and waits for the rest, keeping the order", async () => {
    const e = await edge();
    e.define("s");
    const d = client({ endpoints: [e.address], initialRangeSize: 16, minRangeSize: 16, maxRangeSize: 64 });
    const ids = await d.nextBatch(1_000);
    expect(ids).toHaveLength(1_000);
    for (let i = 1; i < ids.length; i++) expect(ids[i]).toBe(ids[i - 1]! + 1n);
    expect(Math.max(...e.leaseCounts.map(Number))).toBeLessThanOrEqual(64);
  });

  it("serves waiting draws first come, first served", async () => {
    const e = await edge();
    e.define("s");
    e.delayMs = 50;
    const d = client({ endpoints: [e.address], initialRangeSize: 16 });
    const got = await Promise.all([d.next(), d.nextBatch(3), d.next(), d.nextBatch(20), d.next()]);
    expect(got).toEqual([1n, [2n, 3n, 4n], 5n, Array.from({ length: 20 }, (_, i) => BigInt(6 + i)), 26n]);
  });

  it("grows the range with the draw rate, within the bounds and the sequence's limit", async () => {
    const e = await edge();
    e.define("s", { limits: { maxSegmentSize: 4_096n } });
    const d = client({ endpoints: [e.address], initialRangeSize: 16, rangeLifetimeTargetMs: 60_000 });
    for (let i = 0; i < 50_000; i++) if (d.nextSync() === undefined) await d.next();
    expect(d.stats().rangeSize).toBe(4_096);
    expect(e.leaseCounts.every((c) => c <= 4_096n)).toBe(true);
  });

  it("nextString pads fixed-length ids to the sequence's length", async () => {
    const e = await edge();
    e.define("s", { type: SequenceType.SEQUENCE_TYPE_INCREASING_FIXED_LENGTH, length: 8, starting: 5n });
    const d = client({ endpoints: [e.address] });
    expect(await d.nextString()).toBe("00000005");
  });
});

describe("fallback and direct mode", () => {
  it("buffers IssueBatch batches for type 1, where Lease is refused", async () => {
    const e = await edge();
    e.define("s", { type: SequenceType.SEQUENCE_TYPE_RANDOM_FIXED_LENGTH, length: 7, starting: 1_000_000n });
    const d = client({ endpoints: [e.address], initialRangeSize: 100 });
    const ids = await d.nextBatch(250);
    expect(new Set(ids).size).toBe(250);
    expect(e.calls["lease"]).toBeUndefined();
    expect(d.stats().source).toBe("issue-batch");
  });

  it("falls back to IssueBatch when Lease answers FAILED_PRECONDITION", async () => {
    const e = await edge();
    const s = e.define("s");
    const d = client({ endpoints: [e.address], initialRangeSize: 10, minRangeSize: 1, prefetchAt: 1 });
    expect(await d.nextBatch(10)).toHaveLength(10);
    // The ordering changed to global after the client learnt the definition.
    (s.def as { ordering: Ordering }).ordering = Ordering.ORDERING_GLOBAL;
    const ids = await d.nextBatch(5);
    expect(ids[0]).toBe(11n);
    expect(e.calls["issueBatch"]).toBe(1);
    expect(d.stats().source).toBe("issue-batch");
  });

  it("direct mode calls Issue per id and buffers nothing", async () => {
    const e = await edge();
    e.define("s", { ordering: Ordering.ORDERING_GLOBAL });
    const d = client({ endpoints: [e.address], mode: "direct" });
    expect(await d.next()).toBe(1n);
    expect(await d.next()).toBe(2n);
    expect(d.nextSync()).toBeUndefined();
    expect(await d.nextBatch(12_000)).toHaveLength(12_000);
    expect(e.calls).toMatchObject({ issue: 2, issueBatch: 2 });
    expect(d.stats()).toMatchObject({ issued: 12_002n, runway: 0n });
  });
});

describe("failover and waiting", () => {
  it("moves on from an unreachable endpoint, and from one answering UNAVAILABLE", async () => {
    const a = await edge();
    const b = await edge();
    a.define("s");
    b.define("s").next = 1_000_000n;
    a.fault = { code: status.UNAVAILABLE, reason: ErrorReason.ERROR_REASON_NO_LEADER, message: "draining" };
    const d = client({ endpoints: [FakeEdge.deadAddress(), a.address, b.address] });
    expect(await d.next()).toBe(1_000_000n);
    expect(d.stats().endpoint).toBe(b.address);
  });

  it("moves on from an edge that does not answer within callTimeoutMs", async () => {
    const a = await edge();
    const b = await edge();
    a.define("s");
    b.define("s").next = 500n;
    a.delayMs = 5_000;
    const d = client({ endpoints: [a.address, b.address], callTimeoutMs: 100 });
    expect(await d.next()).toBe(500n);
  });

  it("a draw waits at most drawTimeoutMs and says why", async () => {
    const d = client({ endpoints: [FakeEdge.deadAddress()], drawTimeoutMs: 300, callTimeoutMs: 100 });
    const t0 = performance.now();
    const err = await d.next().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DispenserError);
    expect((err as DispenserError).code).toMatch(/^(unavailable|deadline)$/);
    expect(performance.now() - t0).toBeLessThan(2_000);
  });

  it("refuses draws beyond maxWaiters as overloaded", async () => {
    const e = await edge();
    e.define("s");
    e.delayMs = 200;
    const d = client({ endpoints: [e.address], maxWaiters: 2 });
    const a = d.next();
    const b = d.next();
    expect(await codeOfRejection(d.next())).toBe("overloaded");
    expect(await Promise.all([a, b])).toEqual([1n, 2n]);
  });
});

describe("errors", () => {
  it("maps the edge's answers to stable codes", async () => {
    const e = await edge();
    e.define("tiny", { type: SequenceType.SEQUENCE_TYPE_INCREASING_FIXED_LENGTH, length: 1 }, 10n);
    expect(await codeOfRejection(client({ endpoints: [e.address], sequence: "nope" }).next())).toBe(
      "not-found",
    );
    const d = client({ endpoints: [e.address], sequence: "tiny" });
    expect(await codeOfRejection(d.nextBatch(0))).toBe("invalid-argument");
    expect(await codeOfRejection(d.nextBatch(1.5))).toBe("invalid-argument");
    expect(await d.nextBatch(9)).toEqual([1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n, 9n]);
    expect(await codeOfRejection(d.next())).toBe("exhausted");
    expect(await codeOfRejection(d.next())).toBe("exhausted");
    expect(d.stats().issued).toBe(9n);
    expect(await d.parse(5n)).toEqual({ dc: 0, counter: 4n });
    expect(await d.parse("7")).toEqual({ dc: 0, counter: 6n });
    expect(await codeOfRejection(d.parse(0n))).toBe("invalid-argument");
  });

  it("codeOf: status first, ErrorDetail reason where RESOURCE_EXHAUSTED is shared", () => {
    expect(codeOf(status.RESOURCE_EXHAUSTED, ErrorReason.ERROR_REASON_SEQUENCE_EXHAUSTED)).toBe("exhausted");
    expect(codeOf(status.RESOURCE_EXHAUSTED, ErrorReason.ERROR_REASON_OVERLOADED)).toBe("overloaded");
    expect(codeOf(status.RESOURCE_EXHAUSTED, undefined)).toBe("overloaded");
    expect(codeOf(status.UNAVAILABLE, undefined)).toBe("unavailable");
    expect(codeOf(status.DEADLINE_EXCEEDED, undefined)).toBe("deadline");
    expect(codeOf(status.FAILED_PRECONDITION, undefined)).toBe("failed-precondition");
    expect(codeOf(status.NOT_FOUND, undefined)).toBe("not-found");
    expect(codeOf(status.INVALID_ARGUMENT, undefined)).toBe("invalid-argument");
    expect(codeOf(status.DATA_LOSS, undefined)).toBe("internal");
  });
});

describe("a ledger that forgot its grants", () => {
  it("a range from another cluster identity is refused, not used, and counted as wasted", async () => {
    const e = await edge();
    e.define("s");
    const d = client({ endpoints: [e.address], initialRangeSize: 16, prefetchAt: 1 });
    for (let i = 1n; i <= 16n; i++) expect(await d.next()).toBe(i);
    e.clusterIdentity = "b".repeat(32);
    expect(await codeOfRejection(d.next())).toBe("ledger-forgot");
    // Nothing of the refused range is kept to hand out: all of it counts as wasted.
    const st = d.stats();
    expect(st).toMatchObject({ issued: 16n, runway: 0n });
    expect(st.wasted).toBe(st.leased - 16n);
    expect(st.wasted).toBeGreaterThan(0n);
  });

  it("a range of a datacenter below one already received is refused", async () => {
    const e = await edge();
    const s = e.define("s");
    const d = client({ endpoints: [e.address], initialRangeSize: 16, prefetchAt: 1 });
    for (let i = 1n; i <= 16n; i++) expect(await d.next()).toBe(i);
    s.next = 5n; // the ledger restored from an old backup: it grants from 5 again
    const err = await d.next().then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(err).toBeInstanceOf(DispenserError);
    expect((err as DispenserError).code).toBe("ledger-forgot");
    expect(String(err)).toMatch(/from 5 on, but this client already had ids up to 16/);
    // Ranges above everything received are used again.
    s.next = 100n;
    expect(await d.next()).toBe(100n);
  });
});

describe("close", () => {
  it("refuses later draws, fails waiting ones, and counts the discarded buffer as wasted", async () => {
    const e = await edge();
    e.define("s");
    const d = client({ endpoints: [e.address], initialRangeSize: 100, prefetchAt: 1 });
    await d.nextBatch(30);
    await d.close();
    expect(d.nextSync()).toBeUndefined();
    expect(await codeOfRejection(d.next())).toBe("closed");
    expect(await codeOfRejection(d.nextBatch(2))).toBe("closed");
    expect(d.stats()).toMatchObject({ issued: 30n, leased: 100n, wasted: 70n, runway: 0n });
    await d.close(); // twice is fine
  });

  it("fails draws that wait when it closes", async () => {
    const e = await edge();
    e.define("s");
    e.delayMs = 300;
    const d = client({ endpoints: [e.address] });
    const p = codeOfRejection(d.next());
    await new Promise((r) => setTimeout(r, 20));
    await d.close();
    expect(await p).toBe("closed");
  });
});

describe("options and helpers", () => {
  it.each<[Partial<DispenserOptions>, string]>([
    [{ endpoints: [] }, "endpoints"],
    [{ endpoints: ["nohost"] }, "endpoints"],
    [{ sequence: "bad name!" }, "sequence"],
    [{ callTimeoutMs: 0 }, "callTimeoutMs"],
    [{ drawTimeoutMs: 1.5 }, "drawTimeoutMs"],
    [{ maxWaiters: -1 }, "maxWaiters"],
    [{ minRangeSize: 100, maxRangeSize: 10 }, "maxRangeSize"],
    [{ initialRangeSize: 5, minRangeSize: 10 }, "initialRangeSize"],
    [{ prefetchAt: 0 }, "prefetchAt"],
    [{ prefetchAt: 1.5 }, "prefetchAt"],
    [{ mode: "eager" as "direct" }, "mode"],
  ])("refuses %o naming %s", (o, field) => {
    try {
      createDispenser({ endpoints: ["127.0.0.1:1"], sequence: "s", ...o });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(DispenserError);
      expect((e as DispenserError).code).toBe("invalid-argument");
      expect((e as DispenserError).field).toBe(field);
    }
  });

  it("toIdString pads, parseIdString reads uint64 text only", () => {
    expect(toIdString(42n, 7)).toBe("0000042");
    expect(toIdString(12345678901234567890n)).toBe("12345678901234567890");
    expect(parseIdString("0000042")).toBe(42n);
    expect(parseIdString("18446744073709551615")).toBe(18446744073709551615n);
    expect(parseIdString("18446744073709551616")).toBeUndefined();
    expect(parseIdString("-1")).toBeUndefined();
    expect(parseIdString("")).toBeUndefined();
  });

  it("RangeSizer: a power of two near rate x lifetime, at most 4x per step, within bounds", () => {
    const s = new RangeSizer(1_000, 16, 1_000_000, 1_000);
    s.drained(1_000, 1); // 1,000 ids/ms: wants 1,000,000, moves 4x
    expect(s.current).toBe(4_096);
    s.drained(4_096, 1);
    expect(s.current).toBe(16_384);
    s.drained(16_384, 1_000_000); // idle: shrinks 4x per step
    expect(s.current).toBe(4_096);
    s.capAt(1_000);
    expect(s.current).toBe(1_000);
  });
});
