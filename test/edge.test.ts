import { execFile, spawn, spawnSync } from "node:child_process";
import { promisify } from "node:util";
import type { LedgerClient } from "@dispenser/ledger";
import type { IssueBatchResponse } from "@dispenser/proto";
import { DispenserClient, ErrorReason, Layout, SequenceDefinition, errorDetailOf } from "@dispenser/proto";
import type { ServiceError } from "@grpc/grpc-js";
import { credentials, status } from "@grpc/grpc-js";
import { Redis } from "ioredis";
import { createClient } from "redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EdgeProcess } from "./support/edge-process.js";
import { startLedgerAndEdge } from "./support/edge-process.js";
import { LedgerCluster } from "./support/ledger-cluster.js";
import { createRequest, sleep, waitForLeader } from "./support/ledger-helpers.js";

// The edge as users meet it: a real edge process in front of a real 3-node ledger, spoken to with
// real Redis clients (ioredis, node-redis, redis-cli) and a gRPC client. Then the crash tests:
// SIGKILL and SIGTERM of the edge, SIGKILL of the ledger leader under load.

const run = promisify(execFile);
const hasRedisCli = spawnSync("redis-cli", ["--version"]).status === 0;

// Never spawnSync here: the ledger's peer proxies live in this process and must keep running.
async function cli(port: number, ...args: string[]): Promise<string> {
  const r = await run("redis-cli", ["-p", String(port), ...args], { encoding: "utf8", timeout: 10_000 });
  return (r.stdout + r.stderr).trim();
}

async function pipe(port: number, input: string): Promise<string> {
  const p = spawn("redis-cli", ["-p", String(port), "--pipe"], { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  p.stdout.on("data", (d: Buffer) => (out += d.toString()));
  p.stdin.end(input);
  await new Promise((r) => p.once("exit", r));
  return out;
}

function unary<Req, Res>(c: DispenserClient, method: string, req: Req): Promise<Res> {
  const f = (c as unknown as Record<string, (r: Req, cb: (e: ServiceError | null, v: Res) => void) => void>)[
    method
  ]!;
  return new Promise((resolve, reject) => f.call(c, req, (e, v) => (e ? reject(e) : resolve(v))));
}

describe("edge dispenser (real processes on loopback)", () => {
  const ledger = new LedgerCluster([1, 2, 3]);
  let edge: EdgeProcess;
  let lc: LedgerClient;
  let redis: Redis;

  beforeAll(async () => {
    ({ lc, edge } = await startLedgerAndEdge(ledger));
    redis = new Redis({ port: edge.respPort, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    redis.on("error", () => undefined); // reconnects across the edge restarts below
  }, 60_000);

  afterAll(async () => {
    redis?.disconnect();
    lc?.close();
    await edge?.stop("SIGKILL").catch(() => undefined);
    await ledger.stop();
  });

  it("creates with HSET, draws with GET/MGET/GETN, describes with INFO, deletes with DEL (ioredis)", async () => {
    expect(
      await redis.call("HSET", "orders", "type", "2", "length", "8", "auto_disk", "pre-checkpoint"),
    ).toBe(3);
    const a = (await redis.get("orders"))!;
    const b = (await redis.get("orders"))!;
    expect(a).toBe("10000000");
    expect(BigInt(b)).toBe(BigInt(a) + 1n);
    const many = (await redis.call("GETN", "orders", "1000")) as string[];
    expect(many).toHaveLength(1000);
    expect(BigInt(many[0]!)).toBe(BigInt(b) + 1n);
    expect(new Set(many).size).toBe(1000);
    await redis.call("HSET", "users", "type", "3", "starting", "100", "step", "5");
    const m = (await redis.mget("orders", "users")) as string[];
    expect(m[1]).toBe("100");
    const info = (await redis.call("INFO", "orders")) as string;
    expect(info).toMatch(/^name:orders\r\n/);
    expect(info).toContain("type:2\r\n");
    expect(info).toContain("generated:1003\r\n");
    expect(info).toContain("auto_disk:pre-checkpoint\r\n");
    expect(info).toContain("durable:1\r\n");
    expect(await redis.call("PARSE", "orders", many[5]!)).toEqual([0, 7]);
    expect(await redis.del("users", "nosuch")).toBe(1);
    await expect(redis.get("users")).rejects.toThrow(/does not exist|was deleted/);
  });

  it("answers bad input with a clear error and issues nothing", async () => {
    await redis.call("HSET", "strict", "type", "3");
    const before = await redis.get("strict");
    await expect(redis.call("FLUSHALL")).rejects.toThrow(/unknown command 'FLUSHALL'/);
    await expect(redis.call("GET")).rejects.toThrow(/wrong number of arguments for 'get'/);
    await expect(redis.get("no such name!")).rejects.toThrow(/sequence name must be/);
    await expect(redis.get("absent")).rejects.toThrow(/does not exist/);
    await expect(redis.call("GETN", "strict", "0")).rejects.toThrow(/count must be/);
    await expect(redis.call("GETN", "strict", "10001")).rejects.toThrow(/count must be/);
    await expect(redis.call("HSET", "bad", "type", "2", "length", "19")).rejects.toThrow(/length/);
    await expect(redis.call("HSET", "bad", "type", "7")).rejects.toThrow(/type must be/);
    await expect(redis.call("HSET", "bad", "type", "3", "colour", "red")).rejects.toThrow(/unknown field/);
    await expect(redis.call("HSET", "strict", "type", "3")).rejects.toThrow(/exists/);
    await expect(redis.call("PARSE", "strict", "abc")).rejects.toThrow(/not a decimal id/);
    expect(BigInt((await redis.get("strict"))!)).toBe(BigInt(before!) + 1n);
  });

  it("answers a deep pipeline in order, also when its first draw waits for a segment", async () => {
    await redis.call("HSET", "piped", "type", "3");
    const p = redis.pipeline();
    for (let i = 0; i < 30_000; i++) p.get("piped");
    const replies = (await p.exec())!;
    const ids = replies.map(([err, v]) => {
      expect(err).toBeNull();
      return BigInt(v as string);
    });
    for (let i = 0; i < ids.length; i++) expect(ids[i]).toBe(BigInt(i + 1));
  });

  it("type 2 exhaustion is an error, never a wrap", async () => {
    await redis.call("HSET", "tiny", "type", "2", "length", "1");
    const ids = (await redis.call("GETN", "tiny", "9")) as string[];
    expect(ids).toEqual(["1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    await expect(redis.get("tiny")).rejects.toThrow(/^EXHAUSTED/);
  });

  it("speaks RESP3 with node-redis and the connect handshake of real clients", async () => {
    const c = createClient({ socket: { port: edge.respPort, host: "127.0.0.1" }, RESP: 3 });
    await c.connect();
    try {
      await c.sendCommand(["HSET", "r3", "type", "1", "length", "7"]);
      const id = (await c.sendCommand(["GET", "r3"])) as unknown as string;
      expect(id).toMatch(/^[1-9][0-9]{6}$/);
      expect(await c.ping()).toBe("PONG");
      expect(await c.sendCommand(["CLIENT", "SETNAME", "tester"])).toBe("OK");
    } finally {
      c.destroy();
    }
  });

  it.skipIf(!hasRedisCli)("works with redis-cli, including inline commands and pipes", async () => {
    expect(await cli(edge.respPort, "PING")).toBe("PONG");
    expect(await cli(edge.respPort, "HSET", "cli", "type", "3")).toBe("1");
    expect(await cli(edge.respPort, "GET", "cli")).toBe("1");
    expect(await cli(edge.respPort, "-3", "GET", "cli")).toBe("2");
    expect(await pipe(edge.respPort, "\r\nGET cli\r\nGET cli\r\n")).toMatch(/errors: 0, replies: 2/);
    expect(await cli(edge.respPort, "GET", "cli")).toBe("5");
  });

  it("serves gRPC Issue, IssueBatch, Lease, Parse and Info with typed errors", async () => {
    const g = new DispenserClient(edge.grpcAddress, credentials.createInsecure());
    try {
      await unary(g, "createSequence", createRequest("grpc"));
      const one = await unary<object, { value: bigint; str: string }>(g, "issue", { sequence: "grpc" });
      expect(one).toEqual({ value: 1n, str: "1" });
      const batch = await unary<object, IssueBatchResponse>(g, "issueBatch", {
        sequence: "grpc",
        count: 500,
      });
      expect(batch.ids).toEqual({ $case: "range", value: { start: 2n, count: 500n, step: 1n } });
      const lease = await unary<object, { range: { start: bigint; count: bigint } }>(g, "lease", {
        sequence: "grpc",
        count: 100n,
      });
      expect(lease.range.count).toBe(100n);
      expect(lease.range.start).toBeGreaterThan(501n);
      const next = await unary<object, { value: bigint }>(g, "issue", { sequence: "grpc" });
      // The range is the client's alone: the edge's own draws never fall inside it.
      const inRange = next.value >= lease.range.start && next.value < lease.range.start + 100n;
      expect(inRange).toBe(false);
      const again = await unary<object, { range: { start: bigint } }>(g, "lease", {
        sequence: "grpc",
        count: 100n,
      });
      expect(again.range.start).toBeGreaterThanOrEqual(lease.range.start + 100n);
      const parsed = await unary(g, "parse", { sequence: "grpc", id: { $case: "str", value: "42" } });
      expect(parsed).toEqual({ dc: 0, counter: 41n });
      const info = await unary<object, { generated: bigint; durable: boolean }>(g, "info", {
        sequence: "grpc",
      });
      expect(info.generated).toBeGreaterThanOrEqual(602n);
      expect(info.durable).toBe(true);
      const err = await unary(g, "issueBatch", { sequence: "grpc", count: 10_001 }).catch(
        (e: ServiceError) => e,
      );
      expect((err as ServiceError).code).toBe(status.INVALID_ARGUMENT);
      const nf = await unary(g, "issue", { sequence: "nope" }).catch((e: ServiceError) => e);
      expect((nf as ServiceError).code).toBe(status.NOT_FOUND);
      expect(errorDetailOf(nf as ServiceError)?.reason).toBe(ErrorReason.ERROR_REASON_NOT_FOUND);
    } finally {
      g.close();
    }
  });

  it("serves the catalog over gRPC: create, describe, list, update, delete, errors naming the field", async () => {
    const g = new DispenserClient(edge.grpcAddress, credentials.createInsecure());
    type Seq = { sequence: SequenceDefinition };
    const fail = (p: Promise<unknown>): Promise<ServiceError> =>
      p.then(
        () => expect.fail("the call succeeded"),
        (e: ServiceError) => e,
      );
    try {
      const badEnum = await fail(unary(g, "createSequence", createRequest("cat", { layout: 99 as Layout })));
      expect(badEnum.code).toBe(status.INVALID_ARGUMENT);
      expect(badEnum.details).toBe("layout 99 is not a known value");
      expect(errorDetailOf(badEnum)?.field).toBe("layout");
      const none = await fail(unary(g, "createSequence", {}));
      expect(errorDetailOf(none)?.field).toBe("sequence");
      const badDef = await fail(unary(g, "createSequence", createRequest("cat", { type: 2, length: 0 })));
      expect(badDef.code).toBe(status.INVALID_ARGUMENT);
      await expect(unary(g, "describeSequence", { name: "cat" })).rejects.toMatchObject({
        code: status.NOT_FOUND,
      });

      const { sequence: made } = await unary<object, Seq>(g, "createSequence", {
        sequence: SequenceDefinition.fromPartial({ name: "cat", type: 2, length: 6 }),
      });
      // Fields left unset took the ledger's defaults.
      expect(made).toMatchObject({
        name: "cat",
        starting: 100_000n,
        step: 1n,
        layout: Layout.LAYOUT_INTERLEAVED,
      });
      expect(made.revision).toBeGreaterThan(0n);
      expect((await unary<object, Seq>(g, "describeSequence", { name: "cat" })).sequence).toEqual(made);

      const names: string[] = [];
      let pageToken = "";
      do {
        const page = await unary<object, { sequences: SequenceDefinition[]; nextPageToken: string }>(
          g,
          "listSequences",
          { pageSize: 1, pageToken },
        );
        expect(page.sequences.length).toBeLessThanOrEqual(1);
        names.push(...page.sequences.map((x) => x.name));
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      expect(names).toContain("cat");
      expect([...names].sort()).toEqual(names);

      const stale = await fail(
        unary(g, "updateSequence", { name: "cat", expectedRevision: made.revision + 1n, autoDisk: 2 }),
      );
      expect(stale.code).toBe(status.ABORTED);
      const changed = await unary<object, Seq>(g, "updateSequence", {
        name: "cat",
        expectedRevision: made.revision,
        limits: { maxSegmentSize: 500n },
      });
      expect(changed.sequence.limits?.maxSegmentSize).toBe(500n);
      expect(changed.sequence.revision).toBeGreaterThan(made.revision);
      const badChange = await fail(
        unary(g, "updateSequence", { name: "cat", expectedRevision: 0n, ordering: 42 }),
      );
      expect(errorDetailOf(badChange)?.field).toBe("ordering");

      const { revision } = await unary<object, { revision: bigint }>(g, "deleteSequence", {
        name: "cat",
        expectedRevision: changed.sequence.revision,
      });
      expect(revision).toBeGreaterThan(changed.sequence.revision);
      await expect(unary(g, "issue", { sequence: "cat" })).rejects.toMatchObject({ code: status.NOT_FOUND });
    } finally {
      g.close();
    }
  });

  it("exports its counts on /metrics", async () => {
    await redis.call("HSET", "metered", "type", "3");
    await redis.call("GETN", "metered", "250");
    const body = await (await fetch(`http://127.0.0.1:${edge.metricsPort}/metrics`)).text();
    expect(body).toMatch(/^dispenser_edge_ids_issued_total\{sequence="metered"\} 250$/m);
    expect(body).toMatch(/^dispenser_edge_leases_total\{sequence="metered"\} [1-9]/m);
    expect(body).toMatch(/^dispenser_edge_segment_runway\{sequence="metered"\} [1-9]/m);
    expect(body).toMatch(/^dispenser_edge_issue_wait_seconds_count [1-9]/m);
    expect(body).toMatch(
      /^dispenser_edge_rejected_requests_total\{api="resp",code="unknown-command"\} [1-9]/m,
    );
  });

  it("SIGKILL of the edge, restart, draw again: no id repeats", async () => {
    await redis.call("HSET", "crash", "type", "3");
    const seen = new Set<string>();
    for (let round = 0; round < 3; round++) {
      const r = new Redis({
        port: edge.respPort,
        host: "127.0.0.1",
        lazyConnect: true,
        maxRetriesPerRequest: 0,
      });
      await r.connect();
      for (let i = 0; i < 5; i++) {
        for (const id of (await r.call("GETN", "crash", "997")) as string[]) {
          expect(seen.has(id)).toBe(false);
          seen.add(id);
        }
      }
      r.disconnect();
      expect(await edge.stop("SIGKILL")).toBe("SIGKILL");
      await edge.start();
    }
    console.log(`edge SIGKILL x3: ${seen.size} ids drawn, 0 repeated`);
    await redis.connect().catch(() => undefined);
  });

  it("SIGTERM returns the unused tails: the restarted edge continues with zero waste", async () => {
    await redis.call("HSET", "clean", "type", "3").catch(() => undefined);
    let r = new Redis({ port: edge.respPort, host: "127.0.0.1", lazyConnect: true });
    await r.connect();
    await r.call("GETN", "clean", "300");
    const last = BigInt((await r.get("clean"))!);
    r.disconnect();
    expect(await edge.stop("SIGTERM")).toBe(0);
    await edge.start();
    r = new Redis({ port: edge.respPort, host: "127.0.0.1", lazyConnect: true });
    await r.connect();
    expect(BigInt((await r.get("clean"))!)).toBe(last + 1n);
    r.disconnect();
  });

  it("keeps issuing from its buffer while the ledger leader is killed under load", async () => {
    const r = new Redis({ port: edge.respPort, host: "127.0.0.1", lazyConnect: true });
    await r.connect();
    await r.call("HSET", "load", "type", "3", "auto_disk", "elegant_close");
    await r.call("GETN", "load", "10000");
    const seen = new Set<string>();
    let failed = 0;
    let stop = false;
    const clients = Array.from({ length: 4 }, async () => {
      const c = new Redis({ port: edge.respPort, host: "127.0.0.1", lazyConnect: true });
      await c.connect();
      while (!stop) {
        try {
          const id = (await c.get("load"))!;
          if (seen.has(id)) throw new Error(`id ${id} issued twice`);
          seen.add(id);
        } catch (e) {
          if (String(e).includes("issued twice")) throw e;
          failed++;
        }
      }
      c.disconnect();
    });
    await sleep(300);
    const leader = await waitForLeader(lc);
    await ledger.kill(leader);
    await sleep(2_500);
    ledger.start(leader);
    await sleep(500);
    stop = true;
    await Promise.all(clients);
    r.disconnect();
    console.log(`ledger leader ${leader} SIGKILLed under load: ${seen.size} ids drawn, ${failed} failed`);
    expect(failed).toBe(0);
    expect(seen.size).toBeGreaterThan(1000);
  });
});
