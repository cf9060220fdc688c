// Benchmark: ordering `dc` against ordering `edge` on the same two edges of one DC. Every `dc` draw
// waits for a carve from the DC's pool in Redis (one Lua script and a WAIT on the slot's master),
// batched with the draws that wait beside it; an `edge` draw is served from the edge's own segment.
//
//   pnpm bench:dc                      # or: node --import tsx test/bench/dc-ordering.ts
//   pnpm bench:dc -- --rounds 5 --requests 100000 --clients 50
//
// Set-up on 127.0.0.1: a one-node ledger, a 6-process Redis Cluster (3 masters, 3 replicas), two
// edge processes of dc 0 with --redis, and redis-benchmark `GET <seq>` against both edges at once.
// Prints ids/s per ordering (the sum over both edges), the ratio, and the carve size `dc` reached.
import { spawn } from "node:child_process";
import { parseArgs } from "node:util";
import { Cluster, Redis } from "ioredis";
import { EdgeProcess } from "../support/edge-process.js";
import { LedgerCluster } from "../support/ledger-cluster.js";
import { RedisCluster } from "../support/redis-cluster.js";
import { createWhenUp } from "../support/ledger-helpers.js";
import { fmt, log, median, posInt } from "./support.js";

const argv = process.argv.slice(2);
const { values } = parseArgs({
  // `pnpm bench:dc -- --flag` passes the "--" along.
  args: argv[0] === "--" ? argv.slice(1) : argv,
  options: {
    rounds: { type: "string", default: "3" },
    requests: { type: "string", default: "50000" },
    clients: { type: "string", default: "50" },
  },
});
const ROUNDS = posInt("--rounds", values.rounds, 1, 21);
const REQUESTS = posInt("--requests", values.requests, 1_000, 10_000_000);
const CLIENTS = posInt("--clients", values.clients, 1, 1_000);

/** redis-benchmark `GET name` on one port; requests per second. */
function benchmark(port: number, name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const args = ["-h", "127.0.0.1", "-p", String(port), "-c", String(CLIENTS), "-n", String(REQUESTS)];
    const p = spawn("redis-benchmark", [...args, "--csv", "GET", name], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (out += d.toString()));
    p.on("error", reject);
    p.on("exit", () => {
      for (const line of out.split("\n")) {
        const f = line.split(",").map((x) => x.replace(/^"|"$/g, ""));
        const rps = Number(f[1]);
        if (f.length >= 2 && f[0] !== "test" && Number.isFinite(rps) && rps > 0) return resolve(rps);
      }
      reject(new Error(`no requests per second from redis-benchmark: ${out.slice(0, 500)}`));
    });
  });
}

async function main(): Promise<void> {
  const redis = new RedisCluster({ nodeTimeoutMs: 3_000 });
  const ledger = new LedgerCluster([1]);
  const edges: EdgeProcess[] = [];
  try {
    log(`node ${process.version}; ${ROUNDS} rounds of ${REQUESTS} GETs on each of two edges, -c ${CLIENTS}`);
    await redis.start();
    await ledger.init();
    ledger.startAll();
    const nodes = redis.nodes().map((n) => `${n.host}:${n.port}`);
    for (let i = 0; i < 2; i++) {
      const e = new EdgeProcess([ledger.address(1)], ["--redis", nodes.join(","), "--edge-id", `edge-${i}`]);
      await e.init();
      await e.start();
      edges.push(e);
    }
    const c = new Redis({ port: edges[0]!.respPort, host: "127.0.0.1" });
    await createWhenUp(c, "tickets", ["type", "3", "ordering", "dc"]);
    await createWhenUp(c, "orders", ["type", "3", "ordering", "edge"]);
    c.disconnect();
    const probe = new Cluster(redis.nodes(), { redisOptions: { commandTimeout: 2_000 } });
    const poolOf = async (): Promise<{ carves: number; carved: number }> => {
      const [carves, carved] = await probe.hmget("{seq:tickets}:dc:0:pool", "carves", "carved");
      return { carves: Number(carves ?? 0), carved: Number(carved ?? 0) };
    };
    const rates: Record<"dc" | "edge", number[]> = { dc: [], edge: [] };
    const carveSizes: number[] = [];
    const both = async (name: string): Promise<number> =>
      (await Promise.all(edges.map((e) => benchmark(e.respPort, name)))).reduce((a, b) => a + b, 0);
    for (let round = 1; round <= ROUNDS; round++) {
      // Alternate which goes first, so a warming machine favours neither.
      for (const ordering of round % 2 === 1 ? (["dc", "edge"] as const) : (["edge", "dc"] as const)) {
        const before = ordering === "dc" ? await poolOf() : undefined;
        const rps = await both(ordering === "dc" ? "tickets" : "orders");
        rates[ordering].push(rps);
        let extra = "";
        if (before) {
          const after = await poolOf();
          const size = (after.carved - before.carved) / Math.max(1, after.carves - before.carves);
          carveSizes.push(size);
          extra = `, ${after.carves - before.carves} carves of ${fmt(size)} ids on average`;
        }
        log(
          `round ${round}/${ROUNDS} ordering ${ordering}: ${fmt(rps / 1000)}k ids/s over two edges${extra}`,
        );
      }
    }
    probe.disconnect();
    const dc = median(rates.dc);
    const edge = median(rates.edge);
    console.log(
      `\nordering dc: ${fmt(dc / 1000)}k ids/s over two edges of one DC (carves of ${fmt(median(carveSizes))} ids, ` +
        `median), ordering edge on the same edges: ${fmt(edge / 1000)}k ids/s; dc/edge ${fmt(dc / edge, 2)}x`,
    );
  } finally {
    for (const e of edges) await e.stop("SIGKILL").catch(() => undefined);
    await ledger.stop();
    await redis.stop();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
