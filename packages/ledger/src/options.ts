// The ledger node's command-line flags (each also an environment variable: --data-dir →
// DISPENSER_LEDGER_DATA_DIR, and a --config file), turned into LedgerNodeOptions in one place.
import { pino } from "pino";
import type { LedgerNodeOptions } from "./node.js";
import type { CommandSpec } from "@dispenser/plumbing";
import { helpText, isLoopback, parseFlags, tlsFromFlags } from "@dispenser/plumbing";
import { READY_LOOP_DEFAULTS } from "@dispenser/raft";
import { DEFAULT_TICK_MS } from "./raft-server/raft-server.js";
import { StartupError } from "./node.js";

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug"] as const;

export const LEDGER_FLAGS: CommandSpec = {
  name: "ledger",
  envPrefix: "DISPENSER_LEDGER_",
  summary: "Runs one node of the segment ledger (a Raft group on LevelDB).",
  flags: [
    { name: "id", value: "N", help: "this node's id, a positive integer (required)" },
    {
      name: "cluster-id",
      value: "name",
      default: "dispenser",
      help: "name of the cluster; nodes of different clusters refuse each other",
    },
    { name: "data-dir", value: "dir", help: "directory of this node's LevelDB (required)" },
    {
      name: "listen",
      value: "host:port",
      help: "the Ledger service, for clients, and the Peer service too without --peer-listen (default: the address of --id in --peers)",
    },
    {
      name: "peers",
      value: "id=host:port,...",
      help: "initial members' client addresses (--listen), this node included (required unless --join)",
    },
    {
      name: "peer-listen",
      value: "host:port",
      help: "the Peer service on a port of its own, for members only (default: shared with --listen; the address of --id in --peer-addresses if given)",
    },
    {
      name: "peer-addresses",
      value: "id=host:port,...",
      help: "initial members' --peer-listen addresses, when they have one (default: --peers)",
    },
    {
      name: "bootstrap",
      boolean: true,
      help: "create the cluster if the data directory is empty (all --peers become voters)",
    },
    {
      name: "join",
      boolean: true,
      help: "start empty and wait to be added as a new member (after AddMember on the leader)",
    },
    { name: "metrics-listen", value: "host:port", help: "Prometheus /metrics (default: none)" },
    {
      name: "tls-ca",
      value: "file",
      help: "the cluster's CA certificate (PEM); with --tls-cert and --tls-key: mutual TLS between members",
    },
    {
      name: "tls-cert",
      value: "file",
      help: "this node's certificate, naming dispenser://<cluster-id>/ledger/<id> in a URI SAN",
    },
    { name: "tls-key", value: "file", help: "this node's private key (PEM)" },
    {
      name: "tick-ms",
      value: "ms",
      default: String(DEFAULT_TICK_MS),
      help: "milliseconds per Raft tick; heartbeats go every tick",
    },
    {
      name: "election-ticks",
      value: "N",
      default: "10",
      help: "ticks without a leader before an election, randomized up to twice",
    },
    {
      name: "snapshot-entries",
      value: "N",
      default: String(READY_LOOP_DEFAULTS.snapshotEntries),
      help: "take a snapshot every this many applied entries",
    },
    {
      name: "metrics-max-sequences",
      value: "N",
      default: "1000",
      help: 'sequences with /metrics series of their own; the others are summed as sequence="(other)"',
    },
    {
      name: "insecure",
      boolean: true,
      help: "run without TLS on an address beyond loopback, where anyone who reaches it can speak as a member (refused otherwise)",
    },
    { name: "log-level", value: "level", default: "info", help: LOG_LEVELS.join(", ") },
  ],
  notes:
    "example: dispenser ledger --id 1 --data-dir .dispenser/ledger-1 --listen 127.0.0.1:7101 \\\n" +
    "           --peers 1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103 --bootstrap",
};

export function usage(): string {
  return helpText(LEDGER_FLAGS);
}

function parsePeers(s: string, flag = "--peers"): Map<number, string> {
  const m = new Map<number, string>();
  for (const part of s.split(",").filter((x) => x.length > 0)) {
    const eq = part.indexOf("=");
    const id = Number(part.slice(0, eq));
    if (eq <= 0 || !Number.isSafeInteger(id) || id <= 0)
      throw new StartupError(`${flag} entry "${part}" is not id=host:port`);
    if (m.has(id)) throw new StartupError(`${flag} lists node ${id} twice`);
    m.set(id, part.slice(eq + 1));
  }
  return m;
}

export function optionsFrom(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): LedgerNodeOptions | "help" {
  const f = parseFlags(LEDGER_FLAGS, argv, env, (m) => new StartupError(m));
  if (f.bool("help")) return "help";
  f.noMoreThan(0);
  const id = f.int("id", 1, Number.MAX_SAFE_INTEGER);
  if (id === undefined) throw new StartupError("--id is required");
  const dataDir = f.str("data-dir");
  if (!dataDir) throw new StartupError("--data-dir is required");
  const join = f.bool("join");
  const peers = parsePeers(f.str("peers") ?? "");
  if (peers.size === 0 && !join) throw new StartupError("--peers is required (or --join)");
  const listen = f.str("listen") ?? peers.get(id);
  if (!listen) throw new StartupError("--listen is required when --peers does not list this node");
  const peerAddresses = f.has("peer-addresses")
    ? parsePeers(f.str("peer-addresses") ?? "", "--peer-addresses")
    : undefined;
  if (peerAddresses) {
    for (const id of peers.keys())
      if (!peerAddresses.has(id))
        throw new StartupError(`--peer-addresses does not list node ${id} of --peers`);
    for (const id of peerAddresses.keys())
      if (!peers.has(id)) throw new StartupError(`--peer-addresses lists node ${id}, which --peers does not`);
  }
  const peerListen = f.str("peer-listen") ?? peerAddresses?.get(id);
  if (f.has("peer-listen") && !peerAddresses && peers.size > 0)
    throw new StartupError(
      "--peer-listen needs --peer-addresses: the members dial each other's peer ports, not --peers",
    );
  if (peerAddresses && peerListen === undefined)
    throw new StartupError("--peer-listen is required when --peer-addresses does not list this node");
  const level = f.oneOf("log-level", LOG_LEVELS)!;
  const tls = tlsFromFlags(
    { ca: f.str("tls-ca"), cert: f.str("tls-cert"), key: f.str("tls-key") },
    "--tls-ca, --tls-cert and --tls-key",
    (m) => new StartupError(m),
  );
  const exposed = [listen, peerListen].filter((a): a is string => a !== undefined && !isLoopback(a));
  if (!tls && exposed.length > 0 && !f.bool("insecure"))
    throw new StartupError(
      `${exposed.join(" and ")} beyond loopback without TLS: anyone who reaches it could speak as a member. ` +
        "Give --tls-ca, --tls-cert and --tls-key, or --insecure to run so anyway",
    );
  return {
    ...(tls ? { tls } : {}),
    id,
    clusterId: f.str("cluster-id")!,
    dataDir,
    listen,
    peers,
    ...(peerListen !== undefined ? { peerListen } : {}),
    ...(peerAddresses ? { peerAddresses } : {}),
    bootstrap: f.bool("bootstrap"),
    join,
    metricsListen: f.str("metrics-listen"),
    metricsMaxSequences: f.int("metrics-max-sequences", 1, 100_000)!,
    tickMs: f.int("tick-ms", 1, 60_000)!,
    electionTicks: f.int("election-ticks", 2, 1_000)!,
    snapshotEntries: f.int("snapshot-entries", 1, Number.MAX_SAFE_INTEGER)!,
    logger: pino({ level, base: { node: id } }),
  };
}
