// `dispenser dev` (what `pnpm start` runs): three ledger nodes and one edge in this process, with
// their data under ./.dispenser. Ctrl-C stops the edge first (its unused segment tails go back to
// the ledger while the ledger still has a quorum), then the ledger nodes, and exits 0.
// `--dcs N` runs one edge per datacenter (dc 0..N-1, ports counted up from the given ones), and
// `--start-redis` a small Redis Cluster per datacenter for their DC plane and reserve.
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import type { Server } from "node:http";
import { createServer } from "node:net";
import { resolve as resolvePath, join, relative } from "node:path";
import type { ReturnReport } from "@dispenser/edge";
import { EdgeNode } from "@dispenser/edge";
import { LedgerClient, LedgerNode } from "@dispenser/ledger";
import { hostPortError, splitHostPort } from "@dispenser/plumbing";
import type { Logger } from "pino";
import { pino } from "pino";
import { CliError, EXIT, usageError } from "../errors.js";
import type { CommandSpec } from "../flags.js";
import { helpText, parseFlags } from "../flags.js";
import type { Io } from "../io.js";
import { DEV_DEFAULTS } from "../defaults.js";
import { serveDevMetrics } from "../metrics.js";
import { DevRedisCluster, redisServerOnPath } from "./dev-redis.js";

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
  /** Redis Cluster nodes for the edge's plane; empty: the edge runs without one (dc 0 only). */
  readonly redisNodes: readonly string[];
  /** Datacenters: one edge each (dc 0..dcs-1), on the given ports plus dc. Default 1. */
  readonly dcs?: number;
  /** Start a Redis Cluster per DC (redis-server from PATH) on ports from this one; undefined: none. */
  readonly startRedisPort?: number;
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
  /** Bound addresses of the dc 0 edge; undefined when off. */
  readonly resp: string | undefined;
  readonly grpc: string | undefined;
  readonly metrics: string | undefined;
  /** Every edge, dc 0 first. */
  readonly edges: readonly DevEdge[];
}

export interface DevEdge {
  readonly dc: number;
  readonly resp: string | undefined;
  readonly grpc: string | undefined;
  /** /metrics of this edge alone (dc 0's is merged with the ledger's at DevEndpoints.metrics). */
  readonly metrics: string | undefined;
  /** Its DC's Redis Cluster nodes; empty: none. */
  readonly redis: readonly string[];
}

/** The most datacenters `dispenser dev` runs (one edge each). */
export const MAX_DEV_DCS = 3;

/** `addr` with its port moved up by `by` (port 0 stays 0: any free port). */
function shifted(addr: string | undefined, by: number): string | undefined {
  if (addr === undefined || by === 0) return addr;
  const i = addr.lastIndexOf(":");
  const port = Number(addr.slice(i + 1));
  return port === 0 ? addr : `${addr.slice(0, i)}:${port + by}`;
}

function hostPortOf(addr: string, flag: string): { host: string; port: number } {
  if (hostPortError(addr) !== undefined) throw usageError(`${flag} must be host:port, got "${addr}"`, "dev");
  return splitHostPort(addr);
}

/** Fails with the flag that changes it when `addr` cannot be listened on. */
async function checkFree(addr: string, flag: string, what: string): Promise<void> {
  const { host, port } = hostPortOf(addr, flag);
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

/** The embedded cluster: ledger nodes and an edge per datacenter in this process. */
export class DevCluster {
  private readonly ledgers: LedgerNode[] = [];
  private edges: EdgeNode[] = [];
  private readonly redis: DevRedisCluster[] = [];
  private http: Server | undefined;
  private readonly log: Logger;

  constructor(readonly o: DevClusterOptions) {
    this.log = pino({ level: o.logLevel }, pino.destination({ dest: 2, sync: true }));
  }

  async start(): Promise<DevEndpoints> {
    const o = this.o;
    if (o.ledgerListen.length === 0) throw usageError("--ledger-listen needs at least one host:port", "dev");
    const dcs = o.dcs ?? 1;
    if (!Number.isInteger(dcs) || dcs < 1 || dcs > MAX_DEV_DCS)
      throw usageError(`--dcs takes 1 to ${MAX_DEV_DCS}, not ${dcs}`, "dev");
    const checks: [string | undefined, string, string][] = [
      ...o.ledgerListen.map((a, i): [string, string, string] => [
        a,
        "--ledger-listen",
        `ledger node ${i + 1}`,
      ]),
    ];
    for (let dc = 0; dc < dcs; dc++) {
      const of = dcs === 1 ? "" : ` of dc ${dc}`;
      checks.push(
        [shifted(o.respListen, dc), "--resp-listen", `RESP${of}`],
        [shifted(o.grpcListen, dc), "--grpc-listen", `edge gRPC${of}`],
        [shifted(o.metricsListen, dc), "--metrics-listen", `metrics${of}`],
      );
      if (o.startRedisPort !== undefined)
        for (const k of [0, 1])
          checks.push([`127.0.0.1:${o.startRedisPort + 10 * dc + k}`, "--start-redis", `Redis${of}`]);
    }
    const fixed = checks.filter(([a]) => a !== undefined && !a.endsWith(":0")).map(([a]) => a!);
    const twice = fixed.find((a, i) => fixed.indexOf(a) !== i);
    if (twice !== undefined)
      throw usageError(
        `${twice} would be listened on twice (the ports of dc d are the given ones plus d)`,
        "dev",
      );
    for (const [addr, flag, what] of checks) {
      if (addr === undefined) continue;
      if (flag === "--ledger-listen" && hostPortOf(addr, flag).port === 0)
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
      const bound = (addr: string | undefined, port: number): string | undefined =>
        addr === undefined ? undefined : `${addr.slice(0, addr.lastIndexOf(":"))}:${port}`;
      const edges: DevEdge[] = [];
      for (let dc = 0; dc < dcs; dc++) {
        let redisNodes = dc === 0 ? o.redisNodes : [];
        if (o.startRedisPort !== undefined) {
          const base = o.startRedisPort + 10 * dc;
          const r = new DevRedisCluster(join(o.dataDir, `redis-dc${dc}`), [base, base + 1]);
          this.redis.push(r);
          await r.start();
          redisNodes = r.nodes();
        }
        // dc 0's metrics are served below, merged with the ledger nodes'.
        const metricsListen = dc === 0 ? undefined : shifted(o.metricsListen, dc);
        const edge = new EdgeNode({
          dc,
          ledgerEndpoints: o.ledgerListen,
          respListen: shifted(o.respListen, dc),
          grpcListen: shifted(o.grpcListen, dc),
          metricsListen,
          password: o.password,
          redisNodes,
          dataDir: join(o.dataDir, dc === 0 ? "edge" : `edge-dc${dc}`),
          logger: this.log.child({ edge: dc }),
        });
        this.edges.push(edge);
        await edge.start().catch((e: unknown) => {
          throw new CliError(`the edge of dc ${dc} did not start: ${(e as Error).message}`, EXIT.server);
        });
        edges.push({
          dc,
          resp: bound(shifted(o.respListen, dc), edge.respPort),
          grpc: bound(shifted(o.grpcListen, dc), edge.grpcPort),
          metrics: bound(metricsListen, edge.metricsPort),
          redis: redisNodes,
        });
      }
      let metrics: string | undefined;
      if (o.metricsListen !== undefined) {
        const { host, port } = hostPortOf(o.metricsListen, "--metrics-listen");
        const m = await serveDevMetrics(
          host,
          port,
          this.edges[0]!.registry,
          this.ledgers.map((n) => n.registry),
        );
        this.http = m.server;
        metrics = `${host}:${m.port}`;
      }
      return {
        ledger: o.ledgerListen,
        leader,
        resp: edges[0]!.resp,
        grpc: edges[0]!.grpc,
        metrics,
        edges: edges.map((e, dc) => (dc === 0 ? { ...e, metrics } : e)),
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

  /** Stops the edges (returning their unused tails), then the ledger nodes and the Redis Clusters. */
  async stop(): Promise<ReturnReport[]> {
    const edges = this.edges.splice(0);
    // One edge failing to stop must not leave the ledger nodes and Redis servers running.
    const stopped = await Promise.allSettled(edges.map((e) => e.stop()));
    const reports = stopped.flatMap((r) => (r.status === "fulfilled" ? r.value : []));
    for (const r of stopped)
      if (r.status === "rejected") this.log.warn({ err: String(r.reason) }, "an edge did not stop cleanly");
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
    await Promise.all(this.redis.splice(0).map((r) => r.stop()));
    return reports;
  }
}

export const DEV: CommandSpec = {
  name: "dev",
  summary:
    "Runs the embedded dev cluster: three ledger nodes and an edge per datacenter (one by default) in one process (what `pnpm start` runs).",
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
      name: "dcs",
      value: "n",
      default: "1",
      env: "DISPENSER_DEV_DCS",
      help: `datacenters, 1 to ${MAX_DEV_DCS}: one edge each (dc d on the RESP, gRPC and metrics ports plus d)`,
    },
    {
      name: "start-redis",
      boolean: true,
      help: `start a Redis Cluster per datacenter (redis-server from PATH; dc d on ports ${DEV_DEFAULTS.redisPortBase} + 10 d and + 1) for its DC plane and reserve`,
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
    dcs: f.int("dcs", 1, MAX_DEV_DCS)!,
    ...(f.bool("start-redis") ? { startRedisPort: DEV_DEFAULTS.redisPortBase } : {}),
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
    if (v !== undefined) hostPortOf(v, flag);
  if (opts.ledgerListen.length === 0) throw usageError("--ledger-listen needs at least one host:port", "dev");
  if (opts.startRedisPort !== undefined && opts.redisNodes.length > 0)
    throw usageError("--redis and --start-redis: choose one", "dev");
  if ((opts.dcs ?? 1) > 1 && opts.redisNodes.length > 0)
    throw usageError("--redis names one DC's Redis Cluster; with --dcs above 1 use --start-redis", "dev");
  if (opts.startRedisPort !== undefined && !redisServerOnPath())
    throw new CliError(
      "--start-redis needs redis-server on PATH (Debian: apt-get install redis-server)",
      EXIT.usage,
    );
  if (new Set(opts.ledgerListen).size !== opts.ledgerListen.length)
    throw usageError("--ledger-listen lists an address twice", "dev");
  return opts;
}

/** The banner: endpoints and three commands to try. */
export function banner(o: DevClusterOptions, e: DevEndpoints): string {
  const respPort = e.resp?.slice(e.resp.lastIndexOf(":") + 1);
  const cli = respPort === "6380" ? "redis-cli -p 6380" : `redis-cli -p ${respPort}`;
  const lines = [`dispenser dev cluster is up (data in ${shown(o.dataDir)})`];
  if (e.edges.length > 1) {
    lines.push(`  ledger   ${e.ledger.join(", ")}  leader ${e.leader}`);
    for (const d of e.edges)
      lines.push(
        `  dc ${d.dc}     RESP ${d.resp ?? "off"}  gRPC ${d.grpc ?? "off"}  metrics ${d.metrics ?? "off"}  ` +
          (d.redis.length > 0 ? `redis ${d.redis.join(", ")}` : "no redis"),
      );
  } else {
    lines.push(
      `  ledger   ${e.ledger.join(", ")}  leader ${e.leader}`,
      `  RESP     ${e.resp ?? "off"}`,
      `  gRPC     ${e.grpc ?? "off"}`,
      `  metrics  ${e.metrics !== undefined ? `http://${e.metrics}/metrics` : "off"}`,
      e.edges[0]!.redis.length > 0
        ? `  redis    ${e.edges[0]!.redis.join(", ")} (the edge's Redis plane and DC reserve)`
        : "  redis    none: the edge runs without the Redis plane (ids never depend on it; pass --redis or --start-redis for the DC reserve and DC-wide counts in INFO)",
    );
  }
  if (e.resp !== undefined && e.edges.length > 1) {
    const other = e.edges.at(-1)!;
    const otherCli = `redis-cli -p ${other.resp?.slice(other.resp.lastIndexOf(":") + 1)}`;
    lines.push(
      "",
      "Try:",
      `  ${cli} HSET orders type 3 datacenters ${e.edges.length}`,
      `  ${cli} GET orders`,
      `  ${otherCli} GET orders                 # dc ${other.dc}: its own counter space`,
      `  ${otherCli} INFO orders                # its DC's reserve and runway`,
    );
  } else if (e.resp !== undefined) {
    lines.push(
      "",
      "Try:",
      `  ${cli} HSET order_id type 2 length 12 starting 100000000000`,
      `  ${cli} GET order_id`,
      `  ${cli} INFO order_id`,
    );
  }
  lines.push(
    "",
    `Dev mode: plaintext on loopback, ${o.password === undefined ? "no AUTH" : "AUTH with --password"}, no TLS. For anything`,
    'else, run the processes with certificates and users (README, "Security").',
    "",
    "Ctrl-C stops the cluster (unused ids go back to the ledger).",
    "",
  );
  return lines.join("\n");
}

/** Runs until SIGINT or SIGTERM; resolves with the exit code once everything stopped. */
export async function runDev(argv: readonly string[], io: Io): Promise<number> {
  const o = devOptionsFrom(argv, io.env);
  if (o === "help") {
    io.out(helpText(DEV));
    return 0;
  }
  const edges = (o.dcs ?? 1) === 1 ? "one edge" : `an edge in each of ${o.dcs} datacenters`;
  io.out(`starting ${o.ledgerListen.length} ledger nodes and ${edges} (data in ${shown(o.dataDir)})...\n`);
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
