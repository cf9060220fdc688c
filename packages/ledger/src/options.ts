// The ledger node's command-line flags (each also an environment variable: --data-dir →
// DISPENSER_LEDGER_DATA_DIR), turned into LedgerNodeOptions in one place.
import { pino } from "pino";
import type { LedgerNodeOptions } from "./node.js";
import type { FlagSpec } from "@dispenser/plumbing";
import { flagUsage, intFlag, parseFlags } from "@dispenser/plumbing";
import { DEFAULT_TICK_MS } from "./raft-server/raft-server.js";
import { StartupError } from "./node.js";

const FLAGS = {
  id: "this node's id, a positive integer (required)",
  "cluster-id": "name of the cluster; nodes of different clusters refuse each other (default: dispenser)",
  "data-dir": "directory of this node's LevelDB (required)",
  listen: "host:port for peers and clients (default: the address of --id in --peers)",
  peers: "initial members, id=host:port,... including this node (required unless --join)",
  bootstrap: "create the cluster if the data directory is empty (all --peers become voters)",
  join: "start empty and wait to be added as a new member (after AddMember on the leader)",
  "metrics-listen": "host:port for Prometheus /metrics (default: none)",
  "tick-ms": `milliseconds per Raft tick; heartbeats go every tick (default: ${DEFAULT_TICK_MS})`,
  "election-ticks": "ticks without a leader before an election, randomized up to twice (default: 10)",
  "snapshot-entries": "take a snapshot every this many applied entries (default: 10000)",
  "log-level": "fatal, error, warn, info, debug (default: info)",
  help: "print this help",
} as const;
type Flag = keyof typeof FLAGS;
const SPEC: FlagSpec<Flag> = {
  program: "dispenser-ledger",
  envPrefix: "DISPENSER_LEDGER_",
  flags: FLAGS,
  booleans: new Set<Flag>(["bootstrap", "join", "help"]),
  error: StartupError,
};

export function usage(): string {
  return flagUsage(SPEC);
}

function parsePeers(s: string): Map<number, string> {
  const m = new Map<number, string>();
  for (const part of s.split(",").filter((x) => x.length > 0)) {
    const eq = part.indexOf("=");
    const id = Number(part.slice(0, eq));
    if (eq <= 0 || !Number.isSafeInteger(id) || id <= 0)
      throw new StartupError(`--peers entry "${part}" is not id=host:port`);
    if (m.has(id)) throw new StartupError(`--peers lists node ${id} twice`);
    m.set(id, part.slice(eq + 1));
  }
  return m;
}

export function optionsFrom(argv: string[]): LedgerNodeOptions | "help" {
  const f = parseFlags(SPEC, argv);
  if (f.get("help") === "true") return "help";
  const id = intFlag(SPEC, f, "id", 0, 1);
  const dataDir = f.get("data-dir");
  if (!dataDir) throw new StartupError("--data-dir is required");
  const join = f.get("join") === "true";
  const peers = parsePeers(f.get("peers") ?? "");
  if (peers.size === 0 && !join) throw new StartupError("--peers is required (or --join)");
  const listen = f.get("listen") ?? peers.get(id);
  if (!listen) throw new StartupError("--listen is required when --peers does not list this node");
  const level = f.get("log-level") ?? "info";
  if (!["fatal", "error", "warn", "info", "debug"].includes(level))
    throw new StartupError(`--log-level "${level}" is not known`);
  return {
    id,
    clusterId: f.get("cluster-id") ?? "dispenser",
    dataDir,
    listen,
    peers,
    bootstrap: f.get("bootstrap") === "true",
    join,
    metricsListen: f.get("metrics-listen"),
    tickMs: intFlag(SPEC, f, "tick-ms", DEFAULT_TICK_MS, 1),
    electionTicks: intFlag(SPEC, f, "election-ticks", 10, 2),
    snapshotEntries: intFlag(SPEC, f, "snapshot-entries", 10_000, 1),
    logger: pino({ level, base: { node: id } }),
  };
}
