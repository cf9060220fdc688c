// The benchmark's command line and what every part of it shares: paths, the reaper of child processes.
import { Reaper, posInt, spawnBounded as spawnChild } from "../support.js";
import type { Child } from "../support.js";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

export const REPO = resolve(import.meta.dirname, "..", "..", "..");
export const LEDGER_MAIN = join(REPO, "packages", "ledger", "src", "main.ts");
export const BARE_GRPC_MAIN = join(REPO, "test", "bench", "grpc-bare-server.ts");
export const SEQUENCE = "bench";

const argv = process.argv.slice(2);
export const { values: args } = parseArgs({
  // `pnpm bench:ledger -- --flag` passes the "--" along.
  args: argv[0] === "--" ? argv.slice(1) : argv,
  options: {
    duration: { type: "string", default: "5" },
    warmup: { type: "string", default: "1" },
    concurrency: { type: "string", default: "1,16,64,256" },
    clients: { type: "string", default: "1" },
    failovers: { type: "string", default: "5" },
    "failover-concurrency": { type: "string", default: "4" },
    "no-etcd": { type: "boolean", default: false },
    "no-bare": { type: "boolean", default: false },
    rounds: { type: "string", default: "3" },
    settle: { type: "string", default: "20" },
    "no-failover": { type: "boolean", default: false },
    "tick-ms": { type: "string" },
    profile: { type: "string" },
    "lease-size": { type: "string", default: "1000" },
    baseline: { type: "string" },
    "attempt-ms": { type: "string", default: "3000" },
    "node-options": { type: "string" },
    logs: { type: "string" },
    help: { type: "boolean", default: false },
  },
});

if (args.help) {
  console.log(`usage: node --import tsx test/bench/ledger-vs-etcd.ts [flags]
  --duration S              measured seconds per concurrency (default 5)
  --warmup S                warm-up seconds before each window (default 1)
  --concurrency LIST        client concurrencies (default 1,16,64,256)
  --clients N               LedgerClient instances (and etcd gRPC clients) shared by the workers (default 1)
  --failovers N             leader kills per system (default 5; 0 = none)
  --failover-concurrency N  writers during the failover runs (default 4)
  --no-etcd                 ledger only
  --settle S                untimed load per system, at the highest concurrency, before anything is
                            measured (default 20; 0 = none)
  --rounds N                rounds over every system and concurrency, in rotating order; each row is
                            the round with the median ops/s (default 3; 1 with --profile)
  --no-bare                 skip the bare grpc-js server (LeaseSegment answered at once, no Raft, no disk)
  --no-failover             throughput only
  --tick-ms MS              pass --tick-ms to the ledger nodes (default: the node's own default)
  --profile DIR             ledger throughput only, with the nodes under --cpu-prof; prints the
                            leader's top self-time functions (profiles are kept in DIR)
  --lease-size N            ids per LeaseSegment (default 1000)
  --baseline DIR            also measure the ledger of another checkout (DIR, with its dependencies
                            installed) in the same rounds, as system "base": an A/B of a change
                            that the noise of separate runs would hide
  --node-options=OPTS       options for node running the ledger nodes and the bare gRPC server,
                            e.g. --node-options=--trace-gc (with --logs: a GC table at the end)
  --logs DIR                keep each child's whole output in DIR/<name>.log
  --attempt-ms MS           deadline of one attempt in the failover runs, both systems (default 3000,
                            LedgerClient's default); a put stranded on an etcd follower waits this long`);
  process.exit(0);
}

export const DURATION_MS = posInt("duration", args.duration) * 1000;
export const WARMUP_MS = posInt("warmup", args.warmup, 0) * 1000;
export const CONCURRENCY = (args.concurrency ?? "").split(",").map((c) => posInt("concurrency", c));
export const CLIENTS = posInt("clients", args.clients);
export const ROUNDS = args.profile ? 1 : posInt("rounds", args.rounds);
export const SETTLE_MS = posInt("settle", args.settle, 0) * 1000;
export const FAILOVERS = args["no-failover"] || args.profile ? 0 : posInt("failovers", args.failovers, 0);
export const FAILOVER_CONC = posInt("failover-concurrency", args["failover-concurrency"]);
export const LEASE_SIZE = BigInt(posInt("lease-size", args["lease-size"]));
export const ATTEMPT_MS = posInt("attempt-ms", args["attempt-ms"]);
export const PROFILE_DIR = args.profile ? resolve(args.profile) : undefined;
export const BASELINE_DIR = args.baseline ? resolve(args.baseline) : undefined;
export const TICK_ARGS = args["tick-ms"] ? ["--tick-ms", String(posInt("tick-ms", args["tick-ms"]))] : [];

export const reaper = new Reaper(8 * 60_000);
if (args.logs !== undefined) reaper.keepLogs(resolve(args.logs));
export const NODE_OPTIONS = (args["node-options"] ?? "").split(/\s+/).filter(Boolean);
export const RUN_TAG = `${process.pid}-${Date.now().toString(36)}`;

/** Spawn so that the child also dies if this process is killed outright. */
export const spawnBounded = (tag: string, cmd: string, argv: string[]): Child =>
  spawnChild(reaper, REPO, tag, cmd, argv);
