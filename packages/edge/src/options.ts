// The edge's command-line flags (each also an environment variable: --resp-listen →
// DISPENSER_EDGE_RESP_LISTEN, and a --config file), turned into EdgeNodeOptions in one place.
import { MAX_DATACENTERS, MAX_RESERVE_SECONDS } from "@dispenser/domain";
import type { CommandSpec, Flags } from "@dispenser/plumbing";
import { helpText, parseFlags, serverTlsFromFlags, tlsFromFlags } from "@dispenser/plumbing";
import { pino } from "pino";
import type { EdgeNodeOptions } from "./edge-node.js";
import { DEFAULT_RESERVE_SECONDS, exposureWarnings } from "./edge-node.js";

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug"] as const;

export class UsageError extends Error {}

export const EDGE_FLAGS: CommandSpec = {
  name: "edge",
  envPrefix: "DISPENSER_EDGE_",
  summary: "Runs one edge dispenser: RESP and gRPC for clients, segments leased from the ledger.",
  flags: [
    { name: "dc", value: "N", default: "0", help: "this edge's datacenter, 0..D-1" },
    { name: "ledger", value: "host:port,...", help: "ledger node addresses (required)" },
    {
      name: "resp-listen",
      value: "host:port",
      default: "127.0.0.1:6380",
      help: "the Redis-protocol server, or 'off'",
    },
    {
      name: "grpc-listen",
      value: "host:port",
      default: "127.0.0.1:50051",
      help: "the gRPC Dispenser service, or 'off'",
    },
    {
      name: "resp-tls-listen",
      value: "host:port",
      default: "off",
      help: "the Redis-protocol server over TLS (Redis's tls-port; needs --tls-cert), or 'off'",
    },
    { name: "metrics-listen", value: "host:port", default: "off", help: "Prometheus /metrics, or 'off'" },
    {
      name: "metrics-max-sequences",
      value: "N",
      default: "1000",
      help: 'sequences with /metrics series of their own; the others are summed as sequence="(other)"',
    },
    {
      name: "resp-idle-timeout",
      value: "S",
      default: "3600",
      help: "close a RESP connection idle this many seconds (Redis's timeout); 0: never",
    },
    {
      name: "tls-cert",
      value: "file",
      help: "this edge's server certificate (PEM): gRPC is then served over TLS, and RESP on --resp-tls-listen",
    },
    { name: "tls-key", value: "file", help: "the private key of --tls-cert (PEM)" },
    {
      name: "tls-client-ca",
      value: "file",
      help: "mutual TLS: clients of the TLS ports must show a certificate this CA signed (PEM)",
    },
    { name: "password", value: "text", help: "password RESP clients must AUTH with (default: none)" },
    {
      name: "users",
      value: "file",
      help: "users file: name, role (issue|admin), sha256 of the secret, caps; for RESP AUTH and gRPC tokens",
    },
    { name: "edge-id", value: "text", help: "a name for this edge in logs and stats (default: random)" },
    { name: "draw-timeout-ms", value: "ms", default: "5000", help: "how long a draw may wait for a segment" },
    {
      name: "permutation-secret",
      value: "text",
      help: "mixed into type 1 permutations; the same on every edge (default: none)",
    },
    {
      name: "redis",
      value: "host:port,...",
      help: "Redis Cluster nodes of this DC's plane and reserve pool (default: none)",
    },
    {
      name: "reserve-seconds",
      value: "S",
      default: String(DEFAULT_RESERVE_SECONDS),
      help: "with --redis: seconds of the DC's draw rate its reserve pool holds, to issue on when cut off from the ledger, for sequences without a reserve_seconds of their own; 0 turns the reserve off on this edge",
    },
    {
      name: "redis-min-replicas",
      value: "N",
      default: "1",
      help: "with --redis: replicas every carve from the pool must reach (WAIT); 0 only for a Redis without replicas",
    },
    {
      name: "data-dir",
      value: "dir",
      help: "directory of the edge's journal: counts across restarts, crash waste (default: none)",
    },
    {
      name: "ledger-tls-ca",
      value: "file",
      help: "the ledger cluster's CA certificate (PEM): TLS to the ledger",
    },
    {
      name: "ledger-tls-cert",
      value: "file",
      help: "this edge's certificate for the ledger, naming dispenser://<cluster>/edge/<name>",
    },
    { name: "ledger-tls-key", value: "file", help: "this edge's private key for the ledger (PEM)" },
    {
      name: "insecure",
      boolean: true,
      help: "run with ports open beyond loopback without TLS or users, or a plaintext ledger beyond loopback (refused otherwise)",
    },
    { name: "log-level", value: "level", default: "info", help: LOG_LEVELS.join(", ") },
  ],
  notes: "example: dispenser edge --ledger 127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103 --dc 0",
};

export function usage(): string {
  return helpText(EDGE_FLAGS);
}

const listenFlag = (f: Flags, k: string): string | undefined => {
  const v = f.str(k);
  return v === "off" ? undefined : v;
};

export function optionsFrom(argv: string[], env: NodeJS.ProcessEnv = process.env): EdgeNodeOptions | "help" {
  const f = parseFlags(EDGE_FLAGS, argv, env, (m) => new UsageError(m));
  if (f.bool("help")) return "help";
  f.noMoreThan(0);
  const ledger = f.list("ledger");
  if (ledger.length === 0) throw new UsageError("--ledger is required (host:port of ledger nodes)");
  const level = f.oneOf("log-level", LOG_LEVELS)!;
  const dc = f.int("dc", 0, MAX_DATACENTERS - 1)!;
  const edgeId = f.str("edge-id");
  const secret = f.str("permutation-secret");
  const dataDir = f.str("data-dir");
  const ledgerTls = tlsFromFlags(
    { ca: f.str("ledger-tls-ca"), cert: f.str("ledger-tls-cert"), key: f.str("ledger-tls-key") },
    "--ledger-tls-ca, --ledger-tls-cert and --ledger-tls-key",
    (m) => new UsageError(m),
  );
  const tls = serverTlsFromFlags(
    { cert: f.str("tls-cert"), key: f.str("tls-key"), clientCa: f.str("tls-client-ca") },
    { pair: "--tls-cert and --tls-key", clientCa: "--tls-client-ca" },
    (m) => new UsageError(m),
  );
  const respTlsListen = listenFlag(f, "resp-tls-listen");
  if (respTlsListen !== undefined && tls === undefined)
    throw new UsageError("--resp-tls-listen needs --tls-cert and --tls-key");
  const o: EdgeNodeOptions = {
    ...(ledgerTls ? { ledgerTls } : {}),
    ...(tls ? { tls } : {}),
    ...(respTlsListen !== undefined ? { respTlsListen } : {}),
    dc,
    ledgerEndpoints: ledger,
    respListen: listenFlag(f, "resp-listen"),
    grpcListen: listenFlag(f, "grpc-listen"),
    metricsListen: listenFlag(f, "metrics-listen"),
    password: f.str("password"),
    ...(f.str("users") !== undefined ? { usersFile: f.str("users")! } : {}),
    ...(edgeId !== undefined ? { edgeId } : {}),
    ...(secret !== undefined ? { permutationSecret: secret } : {}),
    drawTimeoutMs: f.int("draw-timeout-ms", 1, 600_000)!,
    respIdleTimeoutMs: f.int("resp-idle-timeout", 0, 30 * 86_400)! * 1000,
    metricsMaxSequences: f.int("metrics-max-sequences", 1, 100_000)!,
    redisNodes: f.list("redis"),
    reserveSeconds: f.int("reserve-seconds", 0, MAX_RESERVE_SECONDS)!,
    redisMinReplicas: f.int("redis-min-replicas", 0, 16)!,
    ...(dataDir !== undefined ? { dataDir } : {}),
    logger: pino({ level, base: { dc } }),
  };
  // Secure by default beyond this machine: what would be open to the network must be asked for.
  const exposure = exposureWarnings(o);
  if (exposure.length > 0 && !f.bool("insecure"))
    throw new UsageError(`${exposure.join("; ")}. Pass --insecure to run so anyway`);
  return o;
}
