// The benchmark's command line and the constants drawn from it, and what every part shares: paths,
// the reaper of child processes, tools run to completion.
import { spawnSync } from "node:child_process";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { Child } from "../support.js";
import { Reaper, withTimeout, posInt, spawnBounded as spawnChild } from "../support.js";

export const REPO = resolve(import.meta.dirname, "..", "..", "..");
export const LEDGER_MAIN = join(REPO, "packages", "ledger", "src", "main.ts");
export const EDGE_MAIN = join(REPO, "packages", "edge", "src", "main.ts");
export const BARE_GRPC_MAIN = join(REPO, "test", "bench", "grpc-bare-server.ts");
export const GRPC_CLIENT_MAIN = join(REPO, "test", "bench", "grpc-load-client.ts");
export const SEQUENCE = "seq";
const PHASES = ["resp", "grpc", "batch"] as const;
type Phase = (typeof PHASES)[number];

const argv = process.argv.slice(2);
export const { values: args } = parseArgs({
  // `pnpm bench:edge -- --flag` passes the "--" along.
  args: argv[0] === "--" ? argv.slice(1) : argv,
  options: {
    rounds: { type: "string", default: "3" },
    requests: { type: "string", default: "200000" },
    "pipelined-requests": { type: "string", default: "2000000" },
    clients: { type: "string", default: "50" },
    pipeline: { type: "string", default: "16" },
    "grpc-duration": { type: "string", default: "4" },
    "grpc-connections": { type: "string", default: "4" },
    "grpc-streams": { type: "string", default: "32" },
    "batch-counts": { type: "string", default: "1000,10000" },
    phases: { type: "string", default: PHASES.join(",") },
    "max-segment-size": { type: "string" },
    "edge-redis": { type: "boolean", default: false },
    "reserve-seconds": { type: "string" },
    profile: { type: "string" },
    help: { type: "boolean", default: false },
  },
});

if (args.help) {
  console.log(`usage: node --import tsx test/bench/edge-vs-redis.ts [flags]
  --rounds N                 rounds per comparison, alternating edge and baseline (default 3; medians)
  --requests N               redis-benchmark requests per round without pipelining (default 200000)
  --pipelined-requests N     redis-benchmark requests per round with -P (default 2000000)
  --clients N                redis-benchmark connections (default 50)
  --pipeline N               redis-benchmark -P of the pipelined rows (default 16)
  --grpc-duration S          seconds per gRPC round after 1 s of warm-up (default 4)
  --grpc-connections N       h2load connections (default 4)
  --grpc-streams N           h2load concurrent streams per connection (default 32)
  --batch-counts LIST        IssueBatch sizes (default 1000,10000; at most 10000)
  --phases LIST              any of resp,grpc,batch (default all)
  --max-segment-size N       the sequence's max_segment_size (default: the ledger's, 1,000,000)
  --edge-redis               give the edge a DC plane: a 6-node Redis Cluster of its own, so it
                             issues from the DC's reserve (the common path of a DC with Redis)
  --reserve-seconds N        with --edge-redis: the edge's --reserve-seconds (default its own, 900;
                             0 compares the plane without the reserve)
  --profile DIR              run the edge under --cpu-prof (profiles kept in DIR) and print its
                             top self-time functions per phase; figures are then lower than without`);
  process.exit(0);
}

export const ROUNDS = posInt("rounds", args.rounds, 1, 21);
export const REQUESTS = posInt("requests", args.requests, 1_000, 50_000_000);
export const PIPELINED_REQUESTS = posInt(
  "pipelined-requests",
  args["pipelined-requests"],
  1_000,
  500_000_000,
);
export const CLIENTS = posInt("clients", args.clients, 1, 10_000);
export const PIPELINE = posInt("pipeline", args.pipeline, 2, 1_000);
export const GRPC_SECONDS = posInt("grpc-duration", args["grpc-duration"], 1, 600);
export const GRPC_CONNECTIONS = posInt("grpc-connections", args["grpc-connections"], 1, 1_000);
export const GRPC_STREAMS = posInt("grpc-streams", args["grpc-streams"], 1, 1_000);
export const BATCH_COUNTS = (args["batch-counts"] ?? "")
  .split(",")
  .map((c) => posInt("batch-counts", c, 1, 10_000));
export const PHASE_SET = new Set<Phase>(
  (args.phases ?? "").split(",").map((p) => {
    if (!(PHASES as readonly string[]).includes(p)) {
      console.error(`--phases: "${p}" is not one of ${PHASES.join(", ")}`);
      process.exit(64);
    }
    return p as Phase;
  }),
);
export const SEGMENT_ARGS = args["max-segment-size"]
  ? ["max_segment_size", String(posInt("max-segment-size", args["max-segment-size"], 16, 100_000_000))]
  : [];
export const PROFILE_DIR = args.profile ? resolve(args.profile) : undefined;

/** redis-benchmark slower than this many requests/s is stuck: the round is killed. */
export const RESP_FLOOR_PER_SEC = 5_000;
export const WARMUP_SECONDS = 1;

// A bound on the whole run from the work asked for, so a hung tool cannot keep it alive forever.
const phaseBoundMs =
  60_000 +
  (PHASE_SET.has("resp") ? (2 * ROUNDS * (REQUESTS + PIPELINED_REQUESTS) * 1000) / RESP_FLOOR_PER_SEC : 0) +
  (PHASE_SET.has("grpc") ? 2 * ROUNDS * (GRPC_SECONDS + WARMUP_SECONDS + 10) * 1000 : 0) +
  (PHASE_SET.has("batch")
    ? 2 * ROUNDS * BATCH_COUNTS.length * (GRPC_SECONDS + WARMUP_SECONDS + 10) * 1000
    : 0);
export const reaper = new Reaper(Math.min(phaseBoundMs, 60 * 60_000));
export const RUN_TAG = `${process.pid}-${Date.now().toString(36)}`;
export const HAVE_H2LOAD = spawnSync("h2load", ["--version"], { stdio: "ignore" }).status === 0;

/** Spawn so that the child also dies if this process is killed outright. */
export const spawnBounded = (tag: string, cmd: string, argv: string[]): Child =>
  spawnChild(reaper, REPO, tag, cmd, argv);

/** Runs a tool to completion (killed after timeoutMs); resolves with its stdout. */
export async function runTool(tag: string, cmd: string, argv: string[], timeoutMs: number): Promise<string> {
  const c = spawnBounded(tag, cmd, argv);
  const out: string[] = [];
  let outBytes = 0;
  c.proc.stdout?.on("data", (d: Buffer) => {
    outBytes += d.length;
    if (outBytes <= 4 * 1024 * 1024) out.push(d.toString());
  });
  const closed = new Promise<number | string>((r) =>
    c.proc.once("close", (code, sig) => r(code ?? sig ?? -1)),
  );
  let status: number | string;
  try {
    status = await withTimeout(closed, timeoutMs, `${tag} (${cmd} ${argv.join(" ")})`);
  } catch (e) {
    await reaper.kill(c);
    throw e;
  }
  if (status !== 0) {
    throw new Error(
      `${tag} exited with ${status}:\n${c.output.join("").trim().split("\n").slice(-10).join("\n")}`,
    );
  }
  return out.join("");
}
