// `dispenser dev` (what `pnpm start` runs): three ledger nodes and one edge in this process, with
// their data under ./.dispenser. Ctrl-C stops the edge first (its unused segment tails go back to
// the ledger while the ledger still has a quorum), then the ledger nodes, and exits 0.
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import type { Server } from "node:http";
import { createServer } from "node:net";
import { resolve as resolvePath, join, relative } from "node:path";
import type { ReturnReport } from "@dispenser/edge";
import { EdgeNode } from "@dispenser/edge";
import { LedgerClient, LedgerNode } from "@dispenser/ledger";
import type { Logger } from "pino";
import { pino } from "pino";
import { CliError, EXIT, usageError } from "../errors.js";
import type { CommandSpec } from "../flags.js";
import { helpText, parseFlags } from "../flags.js";
import type { Io } from "../io.js";
import { DEV_DEFAULTS } from "../defaults.js";
import { serveDevMetrics } from "../metrics.js";

export interface DevClusterOptions {
  /** Ledger node i keeps its LevelDB in <dataDir>/ledger-i, the edge its journal in <dataDir>/edge. */
  readonly dataDir: string;
  /** One host:port per ledger node (node ids 1, 2, ...); port 0 is not allowed (peers need it). */
  readonly ledgerListen: readonly string[];
  /** host:port of the edge's RESP server, gRPC service and the merged /metrics; undefined: off. */
  readonly respListen: string | undefined;
  readonly grpcListen: string | undefined;
  readonly metricsListen: string | undefined;
  /** RESP AUTH password; undefined for none. */
  readonly password: string | undefined;
  /** Redis Cluster nodes for the edge's plane; empty: the edge runs without one. */
  readonly redisNodes: readonly string[];
  readonly clusterId: string;
  /** Milliseconds per Raft tick. */
  readonly tickMs: number;
  readonly logLevel: string;
  /** How long to wait for a ledger leader before giving up. */
  readonly leaderTimeoutMs: number;
  /** How long stop() waits for the ledger nodes to close. */
  readonly ledgerStopGraceMs: number;
}

export interface DevEndpoints {
  readonly ledger: readonly string[];
  readonly leader: string;
  /** Bound addresses; undefined when off. */
  readonly resp: string | undefined;
  readonly grpc: string | undefined;
  readonly metrics: string | undefined;
}

function splitHostPort(addr: string, flag: string): { host: string; port: number } {
  const i = addr.lastIndexOf(":");
  const port = Number(addr.slice(i + 1));
  if (i <= 0 || !/^[0-9]{1,5}$/.test(addr.slice(i + 1)) || port > 65535)
    throw usageError(`${flag} must be host:port, got "${addr}"`, "dev");
  return { host: addr.slice(0, i), port };
}

/** Fails with the flag that changes it when `addr` cannot be listened on. */
async function checkFree(addr: string, flag: string, what: string): Promise<void> {
  const { host, port } = splitHostPort(addr, flag);
  if (port === 0) return;
  const s = createServer();
  await new Promise<void>((resolve, reject) => {
    s.once("error", (e: NodeJS.ErrnoException) => {
      const why =
        e.code === "EADDRINUSE"
          ? "is already in use (another dispenser running?)"
          : e.code === "EACCES"
            ? "is not allowed for this user"
            : `cannot be listened on (${e.code ?? e.message})`;
      reject(new CliError(`${addr} (${what}) ${why}; choose another with ${flag} host:port`, EXIT.server));
    });
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve()));
  });
}

/** A directory as the user would type it: relative when below the working directory. */
function shown(dir: string): string {
  const r = relative(".", dir);
  return r === "" ? "." : r.startsWith("..") ? dir : r;
}

function holdsData(dir: string): boolean {
  return existsSync(dir) && readdirSync(dir).length > 0;
}

/** The embedded cluster: ledger nodes and one edge in this process. */
export class DevCluster {
  private readonly ledgers: LedgerNode[] = [];
  private edge: EdgeNode | undefined;
  private http: Server | undefined;
  private readonly log: Logger;

  constructor(readonly o: DevClusterOptions) {
    this.log = pino({ level: o.logLevel }, pino.destination({ dest: 2, sync: true }));
  }

  async start(): Promise<DevEndpoints> {
    const o = this.o;
    if (o.ledgerListen.length === 0) throw usageError("--ledger-listen needs at least one host:port", "dev");
    const checks: [string | undefined, string, string][] = [
      ...o.ledgerListen.map((a, i): [string, string, string] => [
        a,
        "--ledger-listen",
        `ledger node ${i + 1}`,
      ]),
      [o.respListen, "--resp-listen", "RESP"],
      [o.grpcListen, "--grpc-listen", "edge gRPC"],
      [o.metricsListen, "--metrics-listen", "metrics"],
    ];
    for (const [addr, flag, what] of checks) {
      if (addr === undefined) continue;
      if (flag === "--ledger-listen" && splitHostPort(addr, flag).port === 0)
        throw usageError("--ledger-listen needs fixed ports: the nodes find each other by them", "dev");
      await checkFree(addr, flag, what);
    }
    const dirs = o.ledgerListen.map((_, i) => join(o.dataDir, `ledger-${i + 1}`));
    const full = dirs.filter(holdsData);
    if (full.length > 0 && full.length < dirs.length) {
      const missing = dirs.filter((d) => !holdsData(d)).map(shown);
      throw new CliError(
        `${missing.join(", ")} lost its data while the other ledger nodes kept theirs; a node cannot rejoin ` +
          `under its old id: restore the directory, or remove ${o.dataDir} to start over (every sequence is lost)`,
        EXIT.server,
      );
    }
    mkdirSync(o.dataDir, { recursive: true });
    const peers = new Map(o.ledgerListen.map((a, i) => [i + 1, a]));
    try {
      for (const [id, listen] of peers) {
        const node = new LedgerNode({
          id,
          clusterId: o.clusterId,
          dataDir: dirs[id - 1]!,
          listen,
          peers,
          bootstrap: true,
          join: false,
          metricsListen: undefined,
          tickMs: o.tickMs,
          electionTicks: 10,
          snapshotEntries: 10_000,
          logger: this.log.child({ node: id }),
        });
        this.ledgers.push(node);
        await node.start().catch((e: unknown) => {
          throw new CliError(
            `ledger node ${id} (${listen}) did not start: ${(e as Error).message}`,
            EXIT.server,
          );
        });
        if (node.quarantined)
          throw new CliError(
            `ledger node ${id} refuses its corrupt data in ${dirs[id - 1]}: remove ${o.dataDir} to start over`,
            EXIT.server,
          );
      }
      const leader = await this.waitForLeader();
      const edge = new EdgeNode({
        dc: 0,
        ledgerEndpoints: o.ledgerListen,
        respListen: o.respListen,
        grpcListen: o.grpcListen,
        metricsListen: undefined,
        password: o.password,
        redisNodes: o.redisNodes,
        dataDir: join(o.dataDir, "edge"),
        logger: this.log.child({ edge: 0 }),
      });
      this.edge = edge;
      await edge.start().catch((e: unknown) => {
        throw new CliError(`the edge did not start: ${(e as Error).message}`, EXIT.server);
      });
      let metrics: string | undefined;
      if (o.metricsListen !== undefined) {
        const { host, port } = splitHostPort(o.metricsListen, "--metrics-listen");
        const m = await serveDevMetrics(
          host,
          port,
          edge.registry,
          this.ledgers.map((n) => n.registry),
        );
        this.http = m.server;
        metrics = `${host}:${m.port}`;
      }
      const bound = (addr: string | undefined, port: number): string | undefined =>
        addr === undefined ? undefined : `${addr.slice(0, addr.lastIndexOf(":"))}:${port}`;
      return {
        ledger: o.ledgerListen,
        leader,
        resp: bound(o.respListen, edge.respPort),
        grpc: bound(o.grpcListen, edge.grpcPort),
        metrics,
      };
    } catch (e) {
      await this.stop().catch(() => undefined);
      throw e;
    }
  }

  private async waitForLeader(): Promise<string> {
    const client = new LedgerClient({ endpoints: this.o.ledgerListen, totalTimeoutMs: 2_000 });
    const until = Date.now() + this.o.leaderTimeoutMs;
    try {
      while (Date.now() < until) {
        const st = await client.call("clusterStatus", {}).catch(() => undefined);
        if (st && st.leaderId !== 0n) return `node ${st.leaderId} (${st.leaderAddress}), term ${st.term}`;
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      client.close();
    }
    throw new CliError(
      `no ledger leader after ${this.o.leaderTimeoutMs} ms: a majority of the nodes must be up`,
      EXIT.unavailable,
    );
  }

  /** Stops the edge (returning its unused tails), then the ledger nodes. */
  async stop(): Promise<ReturnReport[]> {
    const edge = this.edge;
    this.edge = undefined;
    const reports = edge ? await edge.stop() : [];
    // Bounded as a last resort: every write was synced when it was acknowledged, so exiting with a
    // node half-closed loses nothing.
    const ledgers = Promise.all(this.ledgers.splice(0).map((n) => n.stop()));
    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([
      ledgers.then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), this.o.ledgerStopGraceMs))),
    ]);
    clearTimeout(timer);
    if (!closed) this.log.warn("ledger nodes did not close in time; exiting anyway");
    const http = this.http;
    this.http = undefined;
    if (http) await new Promise<void>((r) => http.close(() => r()));
    return reports;
  }
}

export const DEV: CommandSpec = {
  name: "dev",
  summary:
    "Runs the embedded dev cluster: three ledger nodes and one edge in one process (what `pnpm start` runs).",
  flags: [
    {
      name: "data-dir",
      value: "dir",
      default: DEV_DEFAULTS.dataDir,
      env: "DISPENSER_DATA_DIR",
      help: "where the ledger nodes (ledger-1..3) and the edge keep their data",
    },
    {
      name: "ledger-listen",
      value: "host:port,...",
      default: DEV_DEFAULTS.ledgerListen.join(","),
      env: "DISPENSER_DEV_LEDGER_LISTEN",
      help: "one address per ledger node (node ids 1, 2, ...)",
    },
    {
      name: "resp-listen",
      value: "host:port",
      default: DEV_DEFAULTS.respListen,
      env: "DISPENSER_DEV_RESP_LISTEN",
      help: "the edge's Redis-protocol server, or 'off'",
    },
    {
      name: "grpc-listen",
      value: "host:port",
      default: DEV_DEFAULTS.grpcListen,
      env: "DISPENSER_DEV_GRPC_LISTEN",
      help: "the edge's gRPC Dispenser service, or 'off'",
    },
    {
      name: "metrics-listen",
      value: "host:port",
      default: DEV_DEFAULTS.metricsListen,
      env: "DISPENSER_DEV_METRICS_LISTEN",
      help: "Prometheus /metrics of the edge and the ledger nodes, or 'off'",
    },
    {
      name: "redis",
      value: "host:port,...",
      default: "",
      env: "DISPENSER_REDIS",
      help: "Redis Cluster nodes for the edge's Redis plane (none: the edge runs without it)",
    },
    {
      name: "password",
      value: "secret",
      env: "DISPENSER_DEV_PASSWORD",
      help: "password RESP clients must AUTH with (default: none)",
    },
    {
      name: "cluster-id",
      value: "name",
      default: DEV_DEFAULTS.clusterId,
      env: "DISPENSER_DEV_CLUSTER_ID",
      help: "the ledger's cluster name (stored with the data)",
    },
    {
      name: "tick-ms",
      value: "ms",
      default: String(DEV_DEFAULTS.tickMs),
      env: "DISPENSER_DEV_TICK_MS",
      help: "milliseconds per Raft tick",
    },
    {
      name: "log-level",
      value: "level",
      default: DEV_DEFAULTS.logLevel,
      env: "DISPENSER_DEV_LOG_LEVEL",
      help: "fatal, error, warn, info, debug (logs go to stderr as JSON)",
    },
  ],
  notes:
    "Ctrl-C or SIGTERM stops the edge first (unused ids go back to the ledger), then the ledger nodes, " +
    "and exits 0.\nA second start keeps every sequence and never repeats an id. Remove the data directory " +
    "to start over.",
};

export function devOptionsFrom(argv: readonly string[], env: Io["env"]): DevClusterOptions | "help" {
  const f = parseFlags(DEV, argv, env);
  if (f.bool("help")) return "help";
  f.noMoreThan(0);
  const off = (v: string | undefined): string | undefined => (v === "off" || v === "" ? undefined : v);
  const level = f.oneOf("log-level", ["fatal", "error", "warn", "info", "debug", "silent"] as const)!;
  const opts: DevClusterOptions = {
    dataDir: resolvePath(f.required("data-dir")),
    ledgerListen: f.list("ledger-listen"),
    respListen: off(f.str("resp-listen")),
    grpcListen: off(f.str("grpc-listen")),
    metricsListen: off(f.str("metrics-listen")),
    password: f.str("password"),
    redisNodes: f.list("redis"),
    clusterId: f.required("cluster-id"),
    tickMs: f.int("tick-ms", 1, 10_000)!,
    logLevel: level,
    leaderTimeoutMs: DEV_DEFAULTS.leaderTimeoutMs,
    ledgerStopGraceMs: DEV_DEFAULTS.ledgerStopGraceMs,
  };
  for (const [v, flag] of [
    ...opts.ledgerListen.map((a): [string, string] => [a, "--ledger-listen"]),
    [opts.respListen, "--resp-listen"],
    [opts.grpcListen, "--grpc-listen"],
    [opts.metricsListen, "--metrics-listen"],
    ...opts.redisNodes.map((a): [string, string] => [a, "--redis"]),
  ] as const)
    if (v !== undefined) splitHostPort(v, flag);
  if (opts.ledgerListen.length === 0) throw usageError("--ledger-listen needs at least one host:port", "dev");
  if (new Set(opts.ledgerListen).size !== opts.ledgerListen.length)
    throw usageError("--ledger-listen lists an address twice", "dev");
  return opts;
}

/** The banner: endpoints and three commands to try. */
export function banner(o: DevClusterOptions, e: DevEndpoints): string {
  const respPort = e.resp?.slice(e.resp.lastIndexOf(":") + 1);
  const cli = respPort === "6380" ? "redis-cli -p 6380" : `redis-cli -p ${respPort}`;
  const lines = [
    `dispenser dev cluster is up (data in ${shown(o.dataDir)})`,
    `  ledger   ${e.ledger.join(", ")}  leader ${e.leader}`,
    `  RESP     ${e.resp ?? "off"}`,
    `  gRPC     ${e.grpc ?? "off"}`,
    `  metrics  ${e.metrics !== undefined ? `http://${e.metrics}/metrics` : "off"}`,
    o.redisNodes.length > 0
      ? `  redis    ${o.redisNodes.join(", ")} (the edge's Redis plane)`
      : "  redis    none: the edge runs without the Redis plane (ids never depend on it; pass --redis for DC-wide counts in INFO)",
  ];
  if (e.resp !== undefined) {
    lines.push(
      "",
      "Try:",
      `  ${cli} HSET order_id type 2 length 12 starting 100000000000`,
      `  ${cli} GET order_id`,
      `  ${cli} INFO order_id`,
    );
  }
  lines.push("", "Ctrl-C stops the cluster (unused ids go back to the ledger).", "");
  return lines.join("\n");
}

/** Runs until SIGINT or SIGTERM; resolves with the exit code once everything stopped. */
export async function runDev(argv: readonly string[], io: Io): Promise<number> {
  const o = devOptionsFrom(argv, io.env);
  if (o === "help") {
    io.out(helpText(DEV));
    return 0;
  }
  io.out(`starting ${o.ledgerListen.length} ledger nodes and one edge (data in ${shown(o.dataDir)})...\n`);
  const cluster = new DevCluster(o);
  let stopping: NodeJS.Signals | undefined;
  let stopped: (code: number) => void = () => undefined;
  const done = new Promise<number>((r) => (stopped = r));
  const stop = (): void => {
    io.out(`\n${stopping}: stopping the edge, then the ledger nodes...\n`);
    cluster.stop().then(
      (reports) => {
        const returned = reports.reduce((n, r) => n + r.accepted, 0n);
        for (const r of reports.filter((x) => x.error !== undefined))
          io.err(`dispenser: ${r.name}: unused ids not returned: ${r.error}\n`);
        io.out(`stopped: ${returned} unused ids of ${reports.length} sequences went back to the ledger\n`);
        stopped(0);
      },
      (e: unknown) => {
        io.err(`dispenser: stop failed: ${e instanceof Error ? e.message : String(e)}\n`);
        stopped(EXIT.server);
      },
    );
  };
  let started = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (stopping !== undefined) {
      io.err(
        `dispenser: ${sig} again: exiting without a clean stop (unused ids are skipped, never repeated)\n`,
      );
      process.exit(130);
    }
    stopping = sig;
    if (started) stop();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const endpoints = await cluster.start();
    started = true;
    if (stopping !== undefined) stop();
    else io.out(banner(o, endpoints));
    return await done;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
