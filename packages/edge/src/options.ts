// The edge's command-line flags (each also an environment variable: --resp-listen →
// DISPENSER_EDGE_RESP_LISTEN), turned into EdgeNodeOptions in one place.
import { MAX_DATACENTERS, MAX_RESERVE_SECONDS } from "@dispenser/domain";
import type { FlagSpec } from "@dispenser/plumbing";
import { flagUsage, intFlag, parseFlags } from "@dispenser/plumbing";
import { pino } from "pino";
import type { EdgeNodeOptions } from "./edge-node.js";
import { DEFAULT_RESERVE_SECONDS } from "./edge-node.js";

const FLAGS = {
  dc: "this edge's datacenter, 0..D-1 (default: 0)",
  ledger: "ledger node addresses, host:port,... (required)",
  "resp-listen": "host:port of the Redis-protocol server, or 'off' (default: 127.0.0.1:6380)",
  "grpc-listen": "host:port of the gRPC Dispenser service, or 'off' (default: 127.0.0.1:50051)",
  "metrics-listen": "host:port of Prometheus /metrics, or 'off' (default: off)",
  password: "password RESP clients must AUTH with (default: none)",
  "edge-id": "a name for this edge in logs and stats (default: random)",
  "draw-timeout-ms": "how long a draw may wait for a segment (default: 5000)",
  "permutation-secret": "mixed into type 1 permutations; the same on every edge (default: none)",
  redis: "Redis Cluster nodes of this DC's plane and reserve pool, host:port,... (default: none)",
  "reserve-seconds":
    "with --redis: seconds of the DC's draw rate its reserve pool holds, to issue on when cut off from the ledger, for sequences without a reserve_seconds of their own; 0 turns the reserve off on this edge (default: 900)",
  "redis-min-replicas":
    "with --redis: replicas every carve from the pool must reach (WAIT); 0 only for a Redis without replicas (default: 1)",
  "data-dir": "directory of the edge's journal: counts across restarts, crash waste (default: none)",
  "log-level": "fatal, error, warn, info, debug (default: info)",
  help: "print this help",
} as const;
type Flag = keyof typeof FLAGS;

export class UsageError extends Error {}

const SPEC: FlagSpec<Flag> = {
  program: "dispenser-edge",
  envPrefix: "DISPENSER_EDGE_",
  flags: FLAGS,
  booleans: new Set<Flag>(["help"]),
  error: UsageError,
};

export function usage(): string {
  return flagUsage(SPEC);
}

const listenFlag = (f: Map<Flag, string>, k: Flag, def: string | undefined): string | undefined => {
  const v = f.get(k) ?? def;
  return v === "off" ? undefined : v;
};

export function optionsFrom(argv: string[]): EdgeNodeOptions | "help" {
  const f = parseFlags(SPEC, argv);
  if (f.get("help") === "true") return "help";
  const ledger = (f.get("ledger") ?? "").split(",").filter((s) => s.length > 0);
  if (ledger.length === 0) throw new UsageError("--ledger is required (host:port of ledger nodes)");
  const level = f.get("log-level") ?? "info";
  if (!["fatal", "error", "warn", "info", "debug"].includes(level))
    throw new UsageError(`--log-level "${level}" is not known`);
  const dc = intFlag(SPEC, f, "dc", 0, 0, MAX_DATACENTERS - 1);
  const edgeId = f.get("edge-id");
  const secret = f.get("permutation-secret");
  return {
    dc,
    ledgerEndpoints: ledger,
    respListen: listenFlag(f, "resp-listen", "127.0.0.1:6380"),
    grpcListen: listenFlag(f, "grpc-listen", "127.0.0.1:50051"),
    metricsListen: listenFlag(f, "metrics-listen", undefined),
    password: f.get("password"),
    ...(edgeId !== undefined ? { edgeId } : {}),
    ...(secret !== undefined ? { permutationSecret: secret } : {}),
    drawTimeoutMs: intFlag(SPEC, f, "draw-timeout-ms", 5_000, 1, 600_000),
    redisNodes: (f.get("redis") ?? "").split(",").filter((s) => s.length > 0),
    reserveSeconds: intFlag(SPEC, f, "reserve-seconds", DEFAULT_RESERVE_SECONDS, 0, MAX_RESERVE_SECONDS),
    redisMinReplicas: intFlag(SPEC, f, "redis-min-replicas", 1, 0, 16),
    ...(f.get("data-dir") !== undefined ? { dataDir: f.get("data-dir")! } : {}),
    logger: pino({ level, base: { dc } }),
  };
}
