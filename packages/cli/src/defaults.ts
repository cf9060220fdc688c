import { DEFAULT_TICK_MS } from "@dispenser/ledger";

// The dev cluster's addresses, shared by `dispenser dev` and the commands that default to it.
export const DEV_DEFAULTS = {
  dataDir: ".dispenser",
  ledgerListen: ["127.0.0.1:7101", "127.0.0.1:7102", "127.0.0.1:7103"],
  respListen: "127.0.0.1:6380",
  grpcListen: "127.0.0.1:50051",
  metricsListen: "127.0.0.1:9464",
  clusterId: "dispenser-dev",
  /** `dispenser dev --start-redis`: dc d's Redis master and replica on this port + 10 d and + 1. */
  redisPortBase: 7000,
  tickMs: DEFAULT_TICK_MS,
  logLevel: "warn",
  leaderTimeoutMs: 20_000,
  /** How long Ctrl-C waits for the ledger nodes to close before exiting anyway. */
  ledgerStopGraceMs: 2_000,
} as const;
