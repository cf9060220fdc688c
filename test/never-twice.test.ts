import { execFile, spawnSync } from "node:child_process";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import type { LedgerClient } from "@dispenser/ledger";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EdgeProcess } from "./support/edge-process.js";
import { LedgerCluster } from "./support/ledger-cluster.js";
import { waitForLeader } from "./support/ledger-helpers.js";

// Every path by which a user, an operator or a stranger could make an id repeat, tried against real
// processes: a 3-node ledger and three edges over loopback (two in dc 0 with one permutation secret,
// one with another), spoken to with redis-cli, ioredis, and grpc-js with @grpc/proto-loader on the
// project's protos (clients no one here wrote).

const run = promisify(execFile);
const hasRedisCli = spawnSync("redis-cli", ["--version"]).status === 0;
const PROTOS = resolve(import.meta.dirname, "..", "packages", "proto", "proto");

async function cli(port: number, ...args: string[]): Promise<string> {
  const r = await run("redis-cli", ["-p", String(port), ...args], { encoding: "utf8", timeout: 10_000 });
  return (r.stdout + r.stderr).trim();
}

type Call = (req: object, cb: (e: grpc.ServiceError | null, res: Record<string, unknown>) => void) => void;
type Stub = grpc.Client & Record<string, Call>;

function loadService(file: string, path: string[]): grpc.ServiceClientConstructor {
  const def = protoLoader.loadSync(join(PROTOS, file), {
    includeDirs: [PROTOS],
    longs: String,
    enums: String,
    defaults: true,
  });
  let o: unknown = grpc.loadPackageDefinition(def);
  for (const p of path) o = (o as Record<string, unknown>)[p];
  return o as grpc.ServiceClientConstructor;
}

function call(c: Stub, method: string, req: object): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) =>
    c[method]!.call(c, req, (e, res) => (e ? reject(e) : resolve(res))),
  );
}

describe("never twice, even when misused (real processes on loopback)", () => {
  const ledger = new LedgerCluster([1, 2, 3]);
  let lc: LedgerClient;
  const edges: EdgeProcess[] = [];
  let a: Redis;
  let b: Redis;

  beforeAll(async () => {
    await ledger.init();
    ledger.startAll();
    const { LedgerClient } = await import("@dispenser/ledger");
    lc = new LedgerClient({ endpoints: ledger.addresses(), totalTimeoutMs: 20_000 });
    await waitForLeader(lc);
    // Edges 0 and 1: one DC, one secret (compose and k8s run two). Edge 2: a different secret.
    for (const secret of ["s3cret", "s3cret", "another"]) {
      const e = new EdgeProcess(ledger.addresses(), ["--dc", "0", "--permutation-secret", secret]);
      await e.init();
      await e.start();
      edges.push(e);
    }
    a = new Redis({ port: edges[0]!.respPort, host: "127.0.0.1", maxRetriesPerRequest: 1 });
    a.on("error", () => undefined);
    b = new Redis({ port: edges[1]!.respPort, host: "127.0.0.1", maxRetriesPerRequest: 1 });
    b.on("error", () => undefined); // edge 1 is restarted below
  }, 90_000);

  afterAll(async () => {
    a?.disconnect();
    b?.disconnect();
    lc?.close();
    await Promise.all(edges.map((e) => e.stop("SIGKILL").catch(() => undefined)));
    await ledger.stop();
  });

  it.skipIf(!hasRedisCli)(
    "a delete and re-create with another strategy never repeats (redis-cli)",
    async () => {
      const port = edges[0]!.respPort;
      const seen = new Set<string>();
      const draw = async (name: string): Promise<void> => {
        for (let i = 0; i < 3; i++) {
          const id = await cli(port, "GET", name);
          expect(id).toMatch(/^\d+$/);
          expect(seen.has(id), `id ${id} of ${name} issued twice`).toBe(false);
          seen.add(id);
        }
      };
      // Durable first, then memory: the reproduction.
      expect(await cli(port, "HSET", "x", "type", "3", "starting", "1", "step", "1")).toBe("3");
      await draw("x");
      expect(await cli(port, "DEL", "x")).toBe("1");
      expect(
        await cli(port, "HSET", "x", "type", "3", "starting", "1", "step", "1", "auto_disk", "memory"),
      ).toBe("4");
      await draw("x");
      // Memory first, then durable.
      expect(await cli(port, "DEL", "x")).toBe("1");
      expect(await cli(port, "HSET", "x", "type", "3", "starting", "1", "step", "1")).toBe("3");
      await draw("x");
      expect(seen.size).toBe(9);
      expect(await cli(port, "INFO", "x")).toContain("durable:1");
    },
  );

  it("memory: two edges of one DC, drawing at once and restarted, never hand out the same id", async () => {
    await a.call("HSET", "mem", "type", "3", "auto_disk", "memory");
    const seen = new Map<string, number>();
    const take = (ids: string[], edge: number): void => {
      for (const id of ids) {
        expect(seen.get(id), `id ${id} from edge ${edge} already came from edge ${seen.get(id)}`).toBe(
          undefined,
        );
        seen.set(id, edge);
      }
    };
    const round = async (): Promise<void> => {
      const [x, y] = await Promise.all([a.call("GETN", "mem", "2000"), b.call("GETN", "mem", "2000")]);
      take(x as string[], 0);
      take(y as string[], 1);
    };
    await round();
    // A crash of one edge: the restarted process leases above everything, the other goes on.
    await edges[1]!.stop("SIGKILL");
    await edges[1]!.start();
    await round();
    await round();
    expect(seen.size).toBe(12_000);
    // The old "memory" mode is gone: INFO says every id is durable, none a warning.
    const info = (await b.call("INFO", "mem")) as string;
    expect(info).toContain("durable:1");
    expect(info).not.toContain("warning:");
  });

  it("a stranger's return with a fence from Lease is refused; the range is never granted again (grpc-js + proto-loader)", async () => {
    const Edge = loadService("dispenser/edge/v1/edge.proto", ["dispenser", "edge", "v1", "Dispenser"]);
    const Ledger = loadService("dispenser/ledger/v1/ledger.proto", ["dispenser", "ledger", "v1", "Ledger"]);
    const edge = new Edge(edges[0]!.grpcAddress, grpc.credentials.createInsecure()) as unknown as Stub;
    await a.call("HSET", "held", "type", "3");
    const first = await call(edge, "Lease", { sequence: "held", count: "100" });
    const range = first["range"] as { start: string; count: string };
    const fence = first["fence"] as { term: string; index: string };
    // Type 3, starting 1, step 1, one DC: counter c is id c + 1.
    const start = BigInt(range.start) - 1n;
    const end = start + BigInt(range.count);

    const status = await call(
      new Ledger(ledger.addresses()[0]!, grpc.credentials.createInsecure()) as unknown as Stub,
      "ClusterStatus",
      {},
    );
    // Lease names the ledger's identity, for clients to check (32 hex digits, the cluster's own).
    expect(first["clusterIdentity"]).toMatch(/^[0-9a-f]{32}$/);
    expect(first["clusterIdentity"]).toBe(status["clusterIdentity"]);
    const leader = new Ledger(
      String(status["leaderAddress"]),
      grpc.credentials.createInsecure(),
    ) as unknown as Stub;
    for (const returnToken of ["", "0123456789abcdef0123456789abcdef"]) {
      const e = await call(leader, "ReturnSegment", {
        sequence: "held",
        dc: 0,
        start: start.toString(),
        end: end.toString(),
        fence,
        requestId: `stranger-${returnToken.length}`,
        returnToken,
      }).then(
        () => undefined,
        (err: grpc.ServiceError) => err,
      );
      expect(e?.code).toBe(grpc.status.FAILED_PRECONDITION);
      expect(e?.details).toMatch(/only the holder of a grant can return it/);
    }
    // The next lease lies above the first: nothing was taken back.
    const next = await call(edge, "Lease", { sequence: "held", count: "100" });
    expect(BigInt((next["range"] as { start: string }).start)).toBeGreaterThanOrEqual(
      BigInt(range.start) + 100n,
    );
    edge.close();
    leader.close();
  });

  it("an edge with another permutation secret refuses a type 1 sequence, says why, and counts it", async () => {
    await a.call("HSET", "t1", "type", "1", "length", "7");
    const ids = (await a.call("GETN", "t1", "50")) as string[];
    expect(new Set(ids).size).toBe(50);
    // The same secret on edge 1: it serves, and its ids do not collide with edge 0's.
    const more = (await b.call("GETN", "t1", "50")) as string[];
    expect(new Set([...ids, ...more]).size).toBe(100);

    const c = new Redis({ port: edges[2]!.respPort, host: "127.0.0.1", maxRetriesPerRequest: 1 });
    try {
      await expect(c.get("t1")).rejects.toThrow(
        /bound to the permutation secret with fingerprint [0-9a-f]{16}/,
      );
    } finally {
      c.disconnect();
    }
    const metrics = await (await fetch(`http://127.0.0.1:${edges[2]!.metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/dispenser_edge_key_mismatch_total\{sequence="t1"\} [1-9]/);
    expect(edges[2]!.output.join("")).toContain("refuses to serve it");
  });

  it("bad values are errors naming the field, never defaults, and change nothing", async () => {
    const err = (p: Promise<unknown>): Promise<string> =>
      p.then(
        (v) => `no error: ${String(v)}`,
        (e: Error) => e.message,
      );
    expect(await err(a.call("HSET", "bad", "type", "3", "step", "0"))).toMatch(/step must be > 0/);
    expect(await err(a.call("HSET", "bad", "type", "3", "datacenters", "0"))).toMatch(
      /datacenters must be between 1 and 1024/,
    );
    expect(await err(a.call("HSET", "bad", "type", "2", "length", "6", "starting", "0"))).toMatch(
      /starting 0 is outside the 6-digit range/,
    );
    expect(await err(a.call("HSET", "bad", "type", "3", "auto_disk", "constructor"))).toMatch(
      /auto_disk must be one of memory, pre-base/,
    );
    expect(await err(a.call("HSET", "bad", "type", "3", "max_segment_size", "0"))).toMatch(
      /maxSegmentSize must be between 1/,
    );
    // None of them created "bad"; starting 0 is a real value for type 3, not a default.
    expect(await err(a.get("bad"))).toMatch(/does not exist/);
    expect(await a.call("HSET", "zero", "type", "3", "starting", "0")).toBe(2);
    expect(await a.get("zero")).toBe("0");
    // DEL with one bad name deletes none.
    expect(await err(a.call("DEL", "zero", "bad name!"))).toMatch(/name must be/);
    expect(await a.get("zero")).toBe("1");
  });
});
