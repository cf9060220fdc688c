// Benchmark: one edge process against redis-server (RESP) and against a bare @grpc/grpc-js server
// (gRPC), on the same machine, in the same run, so the ratios hold whatever else loads it.
//
//   pnpm bench:edge                                  # or: node --import tsx test/bench/edge-vs-redis.ts
//   pnpm bench:edge --rounds 5 --requests 400000 --pipelined-requests 4000000
//   pnpm bench:edge --phases resp --profile /tmp/prof   # the edge under --cpu-prof: its hot spots
//
// Set-up on 127.0.0.1: a one-node ledger (fsync on, temp data dir), one edge (RESP and gRPC) leasing
// from it, a type 3 sequence with auto_disk elegant_close (segments grow to the largest size), a
// redis-server without persistence, and grpc-bare-server.ts (Issue = a counter).
// 1. resp:  redis-benchmark -c 50 `GET seq` on the edge against `INCR k` on redis, without and with
//           -P 16; rounds alternate between the two; medians. Afterwards the edge's INFO must show
//           exactly as many ids generated as requests sent, and consecutive ones (so none repeated).
// 2. grpc:  Issue calls/s with h2load (a fixed gRPC request body, HTTP/2), edge against the bare
//           server; a grpc-js client in its own process when h2load is missing.
// 3. batch: IssueBatch of 1,000 and 10,000 ids per call: ids/s, edge against the bare server.
// Every child process and temp dir is removed at the end, also on error or Ctrl-C.
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { DispenserClient } from "@dispenser/proto";
import { credentials } from "@grpc/grpc-js";
import { RedisCluster } from "../support/redis-cluster.js";
import type { Child, ProfileSummary } from "./support.js";
import {
  announcedPort,
  cpuSeconds,
  freePort,
  hotSpots,
  machineBusyOver,
  median,
  Reaper,
  until,
  withTimeout,
  fmt,
  HAVE_SETPRIV,
  log,
  posInt,
  spawnBounded as spawnChild,
  table,
} from "./support.js";

const REPO = resolve(import.meta.dirname, "..", "..");
const LEDGER_MAIN = join(REPO, "packages", "ledger", "src", "main.ts");
const EDGE_MAIN = join(REPO, "packages", "edge", "src", "main.ts");
const BARE_GRPC_MAIN = join(REPO, "test", "bench", "grpc-bare-server.ts");
const GRPC_CLIENT_MAIN = join(REPO, "test", "bench", "grpc-load-client.ts");
const SEQUENCE = "seq";
const PHASES = ["resp", "grpc", "batch"] as const;
type Phase = (typeof PHASES)[number];

const argv = process.argv.slice(2);
const { values: args } = parseArgs({
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

const ROUNDS = posInt("rounds", args.rounds, 1, 21);
const REQUESTS = posInt("requests", args.requests, 1_000, 50_000_000);
const PIPELINED_REQUESTS = posInt("pipelined-requests", args["pipelined-requests"], 1_000, 500_000_000);
const CLIENTS = posInt("clients", args.clients, 1, 10_000);
const PIPELINE = posInt("pipeline", args.pipeline, 2, 1_000);
const GRPC_SECONDS = posInt("grpc-duration", args["grpc-duration"], 1, 600);
const GRPC_CONNECTIONS = posInt("grpc-connections", args["grpc-connections"], 1, 1_000);
const GRPC_STREAMS = posInt("grpc-streams", args["grpc-streams"], 1, 1_000);
const BATCH_COUNTS = (args["batch-counts"] ?? "").split(",").map((c) => posInt("batch-counts", c, 1, 10_000));
const PHASE_SET = new Set<Phase>(
  (args.phases ?? "").split(",").map((p) => {
    if (!(PHASES as readonly string[]).includes(p)) {
      console.error(`--phases: "${p}" is not one of ${PHASES.join(", ")}`);
      process.exit(64);
    }
    return p as Phase;
  }),
);
const SEGMENT_ARGS = args["max-segment-size"]
  ? ["max_segment_size", String(posInt("max-segment-size", args["max-segment-size"], 16, 100_000_000))]
  : [];
const PROFILE_DIR = args.profile ? resolve(args.profile) : undefined;

/** redis-benchmark slower than this many requests/s is stuck: the round is killed. */
const RESP_FLOOR_PER_SEC = 5_000;
const WARMUP_SECONDS = 1;

// A bound on the whole run from the work asked for, so a hung tool cannot keep it alive forever.
const phaseBoundMs =
  60_000 +
  (PHASE_SET.has("resp") ? (2 * ROUNDS * (REQUESTS + PIPELINED_REQUESTS) * 1000) / RESP_FLOOR_PER_SEC : 0) +
  (PHASE_SET.has("grpc") ? 2 * ROUNDS * (GRPC_SECONDS + WARMUP_SECONDS + 10) * 1000 : 0) +
  (PHASE_SET.has("batch")
    ? 2 * ROUNDS * BATCH_COUNTS.length * (GRPC_SECONDS + WARMUP_SECONDS + 10) * 1000
    : 0);
const reaper = new Reaper(Math.min(phaseBoundMs, 60 * 60_000));
const RUN_TAG = `${process.pid}-${Date.now().toString(36)}`;
const HAVE_H2LOAD = spawnSync("h2load", ["--version"], { stdio: "ignore" }).status === 0;

/** Spawn so that the child also dies if this process is killed outright. */
const spawnBounded = (tag: string, cmd: string, argv: string[]): Child =>
  spawnChild(reaper, REPO, tag, cmd, argv);
const kilo = (n: number): string => (Number.isFinite(n) ? `${fmt(n / 1000, 1)}k` : "-");
const mega = (n: number): string => (Number.isFinite(n) ? `${fmt(n / 1e6, 2)}M` : "-");
const monoUs = (): number => Number(process.hrtime.bigint() / 1000n);

/** Runs a tool to completion (killed after timeoutMs); resolves with its stdout. */
async function runTool(tag: string, cmd: string, argv: string[], timeoutMs: number): Promise<string> {
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

/** One redis-cli call (synchronous, short). */
function redisCli(port: number, ...cmd: string[]): string {
  const r = spawnSync("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...cmd], {
    encoding: "utf8",
    timeout: 10_000,
  });
  if (r.status !== 0)
    throw new Error(`redis-cli ${cmd.join(" ")}: ${r.stderr || r.error?.message || r.status}`);
  return r.stdout.trim();
}

// ------------------------------------------------------------------------------------------ processes

interface Servers {
  /** The edge's DC plane (--edge-redis). */
  plane: RedisCluster | undefined;
  ledger: Child;
  edge: Child;
  redis: Child;
  bare: Child;
  edgeResp: number;
  edgeGrpc: number;
  redisPort: number;
  bareGrpc: number;
  dir: string;
}

async function startServers(): Promise<Servers> {
  const dir = reaper.tmpdir("bench-edge-");
  const [ledgerPort, edgeResp, edgeGrpc, redisPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const ledgerAddr = `127.0.0.1:${ledgerPort}`;
  const ledger = spawnBounded("ledger", process.execPath, [
    "--import",
    "tsx",
    LEDGER_MAIN,
    "--id",
    "1",
    "--cluster-id",
    `bench-edge-${RUN_TAG}`,
    "--data-dir",
    join(dir, "ledger"),
    "--listen",
    ledgerAddr,
    "--peers",
    `1=${ledgerAddr}`,
    "--bootstrap",
    "--log-level",
    "warn",
  ]);
  const profileArgs = PROFILE_DIR ? ["--cpu-prof", "--cpu-prof-dir", PROFILE_DIR] : [];
  let plane: RedisCluster | undefined;
  const planeArgs: string[] = [];
  if (args["edge-redis"]) {
    plane = new RedisCluster({ nodeTimeoutMs: 3_000 });
    await plane.start();
    planeArgs.push(
      "--redis",
      plane
        .nodes()
        .map((n) => `${n.host}:${n.port}`)
        .join(","),
    );
    if (args["reserve-seconds"] !== undefined)
      planeArgs.push(
        "--reserve-seconds",
        String(posInt("reserve-seconds", args["reserve-seconds"], 0, 86_400)),
      );
  }
  const edge = spawnBounded("edge", process.execPath, [
    ...profileArgs,
    "--import",
    "tsx",
    EDGE_MAIN,
    "--ledger",
    ledgerAddr,
    "--resp-listen",
    `127.0.0.1:${edgeResp}`,
    "--grpc-listen",
    `127.0.0.1:${edgeGrpc}`,
    "--log-level",
    "warn",
    ...planeArgs,
  ]);
  const redis = spawnBounded("redis-server", "redis-server", [
    "--port",
    String(redisPort),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    dir,
    "--protected-mode",
    "no",
    "--loglevel",
    "warning",
  ]);
  const bare = spawnBounded("bare-grpc", process.execPath, [
    "--import",
    "tsx",
    BARE_GRPC_MAIN,
    "--listen",
    "127.0.0.1:0",
  ]);
  const s: Servers = { plane, ledger, edge, redis, bare, edgeResp, edgeGrpc, redisPort, bareGrpc: 0, dir };
  const mustLive = (): void => {
    for (const c of [ledger, edge, redis, bare]) {
      if (c.proc.exitCode !== null || c.proc.signalCode !== null)
        throw new Error(`${c.tag} exited:\n${c.output.join("").trim().split("\n").slice(-15).join("\n")}`);
    }
  };
  s.bareGrpc = await until("the bare gRPC server", 30_000, () => {
    mustLive();
    return Promise.resolve(announcedPort(bare));
  });
  await until("redis-server", 10_000, () => {
    mustLive();
    return Promise.resolve(redisCli(redisPort, "PING") === "PONG" ? true : undefined);
  });
  await until("the edge's RESP port", 30_000, () => {
    mustLive();
    return Promise.resolve(redisCli(edgeResp, "PING") === "PONG" ? true : undefined);
  });
  // The ledger elects itself; until then HSET answers an error.
  const created = await until("the sequence to be created on the edge (ledger up)", 30_000, () => {
    mustLive();
    const r = redisCli(
      edgeResp,
      "HSET",
      SEQUENCE,
      "type",
      "3",
      "auto_disk",
      "elegant_close",
      ...SEGMENT_ARGS,
    );
    return Promise.resolve(/^\(integer\)|^\d+$/.test(r) ? r : undefined);
  });
  void created;
  return s;
}

async function stopServers(s: Servers): Promise<void> {
  // The edge first, with SIGTERM: it hands its tails back to the ledger and writes its profile.
  await reaper.kill(s.edge, "SIGTERM", 20_000);
  for (const c of [s.bare, s.redis, s.ledger]) await reaper.kill(c, "SIGTERM", 5_000);
  await s.plane?.stop();
  reaper.removeDir(s.dir);
}

// ------------------------------------------------------------------------------------------ measuring

interface Sample {
  /** Requests (or calls) per second. */
  perSec: number;
  /** CPU of the server process over the round, % of one core. */
  serverCpu: number;
  /** Server CPU per request (or call), in µs: less noisy than throughput on a shared machine. */
  cpuUsPerOp: number;
  /** Read and write system calls of the server per request (or call). */
  readsPerOp: number;
  writesPerOp: number;
  /** All cores busy over the round, %. */
  machine: number;
  windowUs: [number, number];
}

function machineTicks(): { busy: number; total: number } {
  const v = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - (v[3] ?? 0) - (v[4] ?? 0), total };
}

/** Read and write system calls made so far by `pid` (/proc/PID/io), zero if unreadable. */
function syscalls(pid: number): { reads: number; writes: number } {
  try {
    const text = readFileSync(`/proc/${pid}/io`, "utf8");
    const get = (k: string): number => Number(new RegExp(`^${k}: (\\d+)$`, "m").exec(text)?.[1] ?? 0);
    return { reads: get("syscr"), writes: get("syscw") };
  } catch {
    return { reads: 0, writes: 0 };
  }
}

/** What one round did: its throughput, and the requests (or calls) the server answered in it. */
interface RoundResult {
  perSec: number;
  ops: number;
}

/** Runs `round` and samples the server's CPU, its system calls and the machine over it. */
async function measured(serverPid: number, round: () => Promise<RoundResult>): Promise<Sample> {
  const c0 = cpuSeconds(serverPid) ?? 0;
  const io0 = syscalls(serverPid);
  const m0 = machineTicks();
  const t0 = monoUs();
  const r = await round();
  const t1 = monoUs();
  const c1 = cpuSeconds(serverPid) ?? c0;
  const io1 = syscalls(serverPid);
  const m1 = machineTicks();
  const ops = Math.max(1, r.ops);
  return {
    perSec: r.perSec,
    serverCpu: (100 * (c1 - c0)) / ((t1 - t0) / 1e6),
    cpuUsPerOp: ((c1 - c0) * 1e6) / ops,
    readsPerOp: (io1.reads - io0.reads) / ops,
    writesPerOp: (io1.writes - io0.writes) / ops,
    machine: (100 * (m1.busy - m0.busy)) / Math.max(1, m1.total - m0.total),
    windowUs: [t0, t1],
  };
}

/** redis-benchmark --csv → requests per second. */
async function redisBenchmark(port: number, n: number, pipeline: number, cmd: string[]): Promise<number> {
  const argv = ["-h", "127.0.0.1", "-p", String(port), "-c", String(CLIENTS), "-n", String(n), "--csv"];
  if (pipeline > 1) argv.push("-P", String(pipeline));
  const timeoutMs = 20_000 + (n * 1000) / RESP_FLOOR_PER_SEC;
  const out = await runTool("redis-benchmark", "redis-benchmark", [...argv, ...cmd], timeoutMs);
  for (const line of out.split("\n")) {
    const f = line.split(",").map((x) => x.replace(/^"|"$/g, ""));
    const rps = Number(f[1]);
    if (f.length >= 2 && f[0] !== "test" && Number.isFinite(rps) && rps > 0) return rps;
  }
  throw new Error(`no requests per second in redis-benchmark's output:\n${out.slice(0, 2000)}`);
}

/** A gRPC request body: the 5-byte length prefix, then the protobuf message. */
function grpcFrame(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

function issueRequest(): Buffer {
  const name = Buffer.from(SEQUENCE);
  return Buffer.concat([Buffer.from([0x0a, name.length]), name]);
}

function issueBatchRequest(count: number): Buffer {
  const varint: number[] = [];
  for (let v = count; ; v >>>= 7) {
    if (v < 0x80) {
      varint.push(v);
      break;
    }
    varint.push((v & 0x7f) | 0x80);
  }
  return Buffer.concat([issueRequest(), Buffer.from([0x10, ...varint])]);
}

interface GrpcRound {
  perSec: number;
  /** Calls answered (HTTP/2 level) in the measured window. */
  calls: number;
}

/** Unary calls/s of one method with a fixed body: h2load, else the grpc-js client. */
async function grpcLoad(
  port: number,
  method: "Issue" | "IssueBatch",
  count: number,
  bodyFile: string,
): Promise<GrpcRound> {
  const timeoutMs = (GRPC_SECONDS + WARMUP_SECONDS + 30) * 1000;
  if (HAVE_H2LOAD) {
    const out = await runTool(
      "h2load",
      "h2load",
      [
        "-c",
        String(GRPC_CONNECTIONS),
        "-m",
        String(GRPC_STREAMS),
        "-t",
        "1",
        "-D",
        String(GRPC_SECONDS),
        "--warm-up-time",
        String(WARMUP_SECONDS),
        "-d",
        bodyFile,
        "-H",
        "content-type: application/grpc",
        "-H",
        "te: trailers",
        `http://127.0.0.1:${port}/dispenser.edge.v1.Dispenser/${method}`,
      ],
      timeoutMs,
    );
    const fin = /finished in ([\d.]+)s, ([\d.]+) req\/s/.exec(out);
    const req =
      /requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(out);
    if (!fin || !req) throw new Error(`unexpected h2load output:\n${out.slice(0, 2000)}`);
    if (Number(req[3]) + Number(req[4]) > 0)
      throw new Error(`h2load: failed or errored requests:\n${out.slice(0, 2000)}`);
    return { perSec: Number(fin[2]), calls: Number(req[2]) };
  }
  const out = await runTool(
    "grpc-load-client",
    process.execPath,
    [
      "--import",
      "tsx",
      GRPC_CLIENT_MAIN,
      "--target",
      `127.0.0.1:${port}`,
      "--method",
      method,
      "--count",
      String(count),
      "--concurrency",
      String(GRPC_CONNECTIONS * GRPC_STREAMS),
      "--duration",
      String(GRPC_SECONDS),
      "--warmup",
      String(WARMUP_SECONDS),
      "--sequence",
      SEQUENCE,
    ],
    timeoutMs,
  );
  const r = JSON.parse(out.trim().split("\n").pop() ?? "{}") as {
    calls?: number;
    seconds?: number;
    errors?: number;
    firstError?: string;
  };
  if ((r.errors ?? 0) > 0) throw new Error(`grpc-load-client: ${r.errors} errors (first: ${r.firstError})`);
  return { perSec: (r.calls ?? 0) / (r.seconds ?? 1), calls: r.calls ?? 0 };
}

/** The calls of a round, the warm-up taken to run at the measured rate (its CPU is counted too). */
function grpcOps(r: GrpcRound): RoundResult {
  return { perSec: r.perSec, ops: r.perSec * (GRPC_SECONDS + WARMUP_SECONDS) };
}

/** One Issue through grpc-js, to check the server answers what h2load will ask (h2load sees HTTP/2 only). */
async function checkIssue(port: number, what: string): Promise<string> {
  const client = new DispenserClient(`127.0.0.1:${port}`, credentials.createInsecure());
  try {
    const id = await withTimeout(
      new Promise<string>((resolve, reject) =>
        client.issue({ sequence: SEQUENCE }, (err, res) => (err ? reject(err) : resolve(res.str))),
      ),
      10_000,
      `Issue on ${what}`,
    );
    if (!/^\d+$/.test(id)) throw new Error(`Issue on ${what} answered "${id}"`);
    return id;
  } finally {
    client.close();
  }
}

interface SeqInfo {
  generated: bigint;
  wasted: bigint;
  current: bigint | undefined;
  /** The size of the next segment the edge will lease. */
  segmentSize: bigint;
}

function seqInfo(port: number): SeqInfo {
  const text = redisCli(port, "INFO", SEQUENCE);
  const field = (k: string): string | undefined => new RegExp(`^${k}:(.*)$`, "m").exec(text)?.[1]?.trim();
  const cur = field("current");
  return {
    generated: BigInt(field("generated") ?? "0"),
    wasted: BigInt(field("wasted") ?? "0"),
    current: cur ? BigInt(cur) : undefined,
    segmentSize: BigInt(field("segment_size") ?? "0"),
  };
}

interface Comparison {
  what: string;
  unit: "req/s" | "calls/s" | "ids/s";
  edge: Sample[];
  base: Sample[];
  baseName: string;
  aim: number;
  /** Multiply per-call figures by this to get the unit (ids per call). */
  scale: number;
}

/** Alternates edge and baseline rounds, starting with the edge on odd rounds. */
async function compare(
  c: Omit<Comparison, "edge" | "base">,
  edgePid: number,
  basePid: number,
  edgeRound: () => Promise<RoundResult>,
  baseRound: () => Promise<RoundResult>,
): Promise<Comparison> {
  const out: Comparison = { ...c, edge: [], base: [] };
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? (["edge", "base"] as const) : (["base", "edge"] as const);
    for (const who of order) {
      const s = who === "edge" ? await measured(edgePid, edgeRound) : await measured(basePid, baseRound);
      (who === "edge" ? out.edge : out.base).push(s);
      log(
        `${c.what} round ${r + 1}/${ROUNDS} ${who === "edge" ? "edge" : c.baseName}: ` +
          `${fmtUnit(s.perSec * c.scale, c.unit)} (server CPU ${fmt(s.serverCpu, 0)}%, ` +
          `${fmt(s.cpuUsPerOp, 2)} µs and ${fmt(s.readsPerOp, 3)} reads + ${fmt(s.writesPerOp, 3)} writes per ` +
          `${c.unit === "req/s" ? "request" : "call"}; machine ${fmt(s.machine, 0)}%)`,
      );
    }
  }
  return out;
}

function fmtUnit(v: number, unit: Comparison["unit"]): string {
  return `${unit === "ids/s" ? mega(v) : kilo(v)} ${unit}`;
}

// ------------------------------------------------------------------------------------------ report

function printProfile(title: string, p: ProfileSummary): void {
  console.log(
    `\n== Edge CPU profile, ${title} (${p.file}): busy ${fmt(p.busyMs, 0)} ms, idle ${fmt(p.idleMs, 0)} ms`,
  );
  const rows: string[][] = [["self ms", "% of busy", "function", "location"]];
  for (const s of p.spots) rows.push([fmt(s.selfMs, 0), fmt(s.percent, 1), s.functionName, s.location]);
  console.log(table(rows));
  const files: string[][] = [["self ms", "% of busy", "file or package"]];
  for (const f of p.byFile) files.push([fmt(f.selfMs, 0), fmt(f.percent, 1), f.file]);
  console.log(table(files));
}

// ------------------------------------------------------------------------------------------ main

async function main(): Promise<void> {
  const tStart = performance.now();
  const cores = availableParallelism();
  const load0 = loadavg();
  log(
    `node ${process.version}, ${cores} cores, load average ${load0.map((l) => fmt(l, 2)).join(" ")}; ` +
      `${ROUNDS} rounds per comparison; h2load ${HAVE_H2LOAD ? "found" : "missing: gRPC load from a grpc-js client"}` +
      (HAVE_SETPRIV ? "" : " (setpriv missing: children die only on a clean exit of this script)"),
  );
  const busy0 = await machineBusyOver(1_000);
  log(`machine ${fmt(busy0, 0)}% busy before the run`);
  const s = await startServers();
  log(
    `up: ledger (1 node, fsync on), edge RESP :${s.edgeResp} gRPC :${s.edgeGrpc}, redis-server :${s.redisPort}, ` +
      `bare gRPC :${s.bareGrpc}; sequence "${SEQUENCE}" type 3 auto_disk elegant_close`,
  );
  const results: Comparison[] = [];
  const checks: string[] = [];
  const windows = new Map<string, [number, number][]>();
  const edgeWindows = (key: string, c: Comparison): void => {
    windows.set(
      key,
      c.edge.map((x) => x.windowUs),
    );
  };

  if (PHASE_SET.has("resp")) {
    // Warm-up: JIT of the edge's hot path, a first segment, redis's own start.
    await redisBenchmark(s.edgeResp, 100_000, PIPELINE, ["GET", SEQUENCE]);
    await redisBenchmark(s.redisPort, 100_000, PIPELINE, ["INCR", "k"]);
    const before = seqInfo(s.edgeResp);
    let sent = 0n;
    for (const pipeline of [1, PIPELINE]) {
      const n = pipeline === 1 ? REQUESTS : PIPELINED_REQUESTS;
      const c = await compare(
        {
          what: `RESP -c ${CLIENTS}${pipeline > 1 ? ` -P ${pipeline}` : ""}`,
          unit: "req/s",
          baseName: "redis INCR",
          aim: 1.0,
          scale: 1,
        },
        s.edge.pid,
        s.redis.pid,
        async () => {
          const rps = await redisBenchmark(s.edgeResp, n, pipeline, ["GET", SEQUENCE]);
          sent += BigInt(n);
          return { perSec: rps, ops: n };
        },
        async () => ({ perSec: await redisBenchmark(s.redisPort, n, pipeline, ["INCR", "k"]), ops: n }),
      );
      results.push(c);
      edgeWindows(pipeline === 1 ? "resp" : "resp-pipelined", c);
    }
    const after = seqInfo(s.edgeResp);
    const generated = after.generated - before.generated;
    const consecutive =
      before.current !== undefined &&
      after.current !== undefined &&
      after.current - before.current === generated;
    const ok = generated === sent && after.wasted === before.wasted;
    checks.push(
      `RESP ids: ${sent} GETs sent, ${generated} ids generated (${ok ? "equal" : "MISMATCH"}), ` +
        `current ${before.current} → ${after.current}: ` +
        (consecutive
          ? "consecutive, so no id was issued twice"
          : "NOT consecutive (a segment gap or repeats)"),
    );
    if (!ok) process.exitCode = 1;
  }

  const bodies = reaper.tmpdir("bench-edge-bodies-");
  if (PHASE_SET.has("grpc")) {
    const edgeId = await checkIssue(s.edgeGrpc, "the edge");
    const bareId = await checkIssue(s.bareGrpc, "the bare server");
    log(`gRPC Issue answers: edge "${edgeId}", bare server "${bareId}"`);
    const body = join(bodies, "issue.bin");
    writeFileSync(body, grpcFrame(issueRequest()));
    let answered = 0;
    const before = seqInfo(s.edgeResp);
    const c = await compare(
      { what: "gRPC Issue", unit: "calls/s", baseName: "bare grpc-js", aim: 0.9, scale: 1 },
      s.edge.pid,
      s.bare.pid,
      async () => {
        const r = await grpcLoad(s.edgeGrpc, "Issue", 1, body);
        answered += r.calls;
        return grpcOps(r);
      },
      async () => grpcOps(await grpcLoad(s.bareGrpc, "Issue", 1, body)),
    );
    results.push(c);
    edgeWindows("grpc", c);
    const generated = seqInfo(s.edgeResp).generated - before.generated;
    // h2load sees HTTP/2 statuses only: a gRPC error would still count as a success there.
    const ok = generated >= BigInt(answered);
    checks.push(
      `gRPC Issue: ${answered} calls answered in the measured windows, ${generated} ids generated ` +
        `(with warm-up) — ${ok ? "every answer carried an id" : "FEWER IDS THAN ANSWERS: some calls failed"}`,
    );
    if (!ok) process.exitCode = 1;
  }

  if (PHASE_SET.has("batch")) {
    for (const count of BATCH_COUNTS) {
      const body = join(bodies, `batch-${count}.bin`);
      writeFileSync(body, grpcFrame(issueBatchRequest(count)));
      let answered = 0;
      const before = seqInfo(s.edgeResp);
      const c = await compare(
        { what: `gRPC IssueBatch ${count}`, unit: "ids/s", baseName: "bare grpc-js", aim: 0, scale: count },
        s.edge.pid,
        s.bare.pid,
        async () => {
          const r = await grpcLoad(s.edgeGrpc, "IssueBatch", count, body);
          answered += r.calls;
          return grpcOps(r);
        },
        async () => grpcOps(await grpcLoad(s.bareGrpc, "IssueBatch", count, body)),
      );
      results.push(c);
      edgeWindows(`batch-${count}`, c);
      const after = seqInfo(s.edgeResp);
      const generated = after.generated - before.generated;
      const ok = generated >= BigInt(answered) * BigInt(count);
      checks.push(
        `gRPC IssueBatch ${count}: ${answered} calls answered, ${generated} ids generated — ` +
          (ok ? "every answer carried its ids" : "FEWER IDS THAN ANSWERED: some calls failed") +
          `; segment size now ${after.segmentSize}`,
      );
      if (!ok) process.exitCode = 1;
    }
  }
  reaper.removeDir(bodies);
  const load1 = loadavg();
  await stopServers(s);

  // ---------------------------------------------------------------------------------------- summary
  console.log("");
  console.log(
    `== Edge vs baselines, 127.0.0.1, ${cores} cores shared by servers and load generators; medians of ${ROUNDS} ` +
      `alternating rounds; redis-benchmark -c ${CLIENTS}, ${HAVE_H2LOAD ? `h2load -c ${GRPC_CONNECTIONS} -m ${GRPC_STREAMS}` : "grpc-js client"} ` +
      `${GRPC_SECONDS} s per round`,
  );
  const rows: string[][] = [
    [
      "what",
      "edge",
      "baseline",
      "edge/base",
      "aim",
      "server CPU % edge | base",
      "CPU µs/op edge | base",
      "writes/op edge | base",
      "machine",
      "rounds edge | base",
    ],
  ];
  for (const c of results) {
    const e = median(c.edge.map((x) => x.perSec)) * c.scale;
    const b = median(c.base.map((x) => x.perSec)) * c.scale;
    const aim = c.unit === "ids/s" ? "≥ 5M ids/s" : `≥ ${fmt(c.aim, 1)}x`;
    const met = c.unit === "ids/s" ? e >= 5e6 : e / b >= c.aim;
    rows.push([
      c.what,
      fmtUnit(e, c.unit),
      `${fmtUnit(b, c.unit)} (${c.baseName})`,
      `${fmt(e / b, 2)}x`,
      `${aim} ${met ? "met" : "MISSED"}`,
      `${fmt(median(c.edge.map((x) => x.serverCpu)), 0)} | ${fmt(median(c.base.map((x) => x.serverCpu)), 0)}`,
      `${fmt(median(c.edge.map((x) => x.cpuUsPerOp)), 2)} | ${fmt(median(c.base.map((x) => x.cpuUsPerOp)), 2)}`,
      `${fmt(median(c.edge.map((x) => x.writesPerOp)), 3)} | ${fmt(median(c.base.map((x) => x.writesPerOp)), 3)}`,
      `${fmt(median([...c.edge, ...c.base].map((x) => x.machine)), 0)}%`,
      `${c.edge.map((x) => (c.unit === "ids/s" ? mega(x.perSec * c.scale) : kilo(x.perSec))).join(" ")} | ` +
        c.base.map((x) => (c.unit === "ids/s" ? mega(x.perSec * c.scale) : kilo(x.perSec))).join(" "),
    ]);
  }
  console.log(table(rows));
  console.log("");
  for (const line of checks) console.log(`check: ${line}`);
  console.log(
    `machine: ${fmt(busy0, 0)}% busy before the run; load average ${load0.map((l) => fmt(l, 2)).join(" ")} at the start, ` +
      `${load1.map((l) => fmt(l, 2)).join(" ")} at the end. CPU % is of one core over each round (a ` +
      "server's main thread tops out near 100%); µs/op is server CPU per request or call (gRPC: warm-up " +
      "included at the measured rate); writes/op counts write system calls; 'machine' is % of all cores: near 100% means the load " +
      "generator and the server were fighting for the CPU." +
      (busy0 > 15
        ? " WARNING: something else was using the machine; ratios hold better than absolute figures."
        : ""),
  );
  if (PROFILE_DIR) {
    console.log("\nThe edge ran under --cpu-prof: its figures above are depressed by the profiler.");
    for (const [key, ws] of windows) {
      if (ws.length === 0) continue;
      const span: [number, number] = [Math.min(...ws.map((w) => w[0])), Math.max(...ws.map((w) => w[1]))];
      printProfile(key, hotSpots(PROFILE_DIR, 25, REPO, span));
    }
  }
  console.log(`\ntotal run time ${fmt((performance.now() - tStart) / 1000, 0)} s`);
}

main().then(
  () => process.exit(),
  (e: unknown) => {
    console.error(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  },
);
