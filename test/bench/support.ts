// Helpers for the benchmark scripts: child processes that never outlive the run, a closed-loop load
// generator with latency percentiles, CPU sampling from /proc, a minimal etcd v3 gRPC client
// (hand-encoded protobuf, so no etcd package is needed), and a .cpuprofile summary.
import type { ChildProcess, SpawnOptions } from "node:child_process";
import { spawn, spawnSync } from "node:child_process";
import {
  appendFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ServiceError } from "@grpc/grpc-js";
import { Client, credentials, Metadata } from "@grpc/grpc-js";

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

/** Poll `f` until it returns a value (not undefined) or `ms` pass. */
export async function until<T>(
  what: string,
  ms: number,
  f: () => Promise<T | undefined>,
  everyMs = 50,
): Promise<T> {
  const end = performance.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (performance.now() > end) {
      const why = last instanceof Error ? `: ${last.message}` : "";
      throw new Error(`timed out after ${ms} ms waiting for ${what}${why}`);
    }
    await sleep(everyMs);
  }
}

// ------------------------------------------------------------------------------------------ processes

export { freePort } from "../support/ledger-cluster.js";

export interface Child {
  readonly tag: string;
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Last lines of stdout and stderr. */
  readonly output: string[];
}

/**
 * Every child process and temp dir of the run. They are killed (SIGKILL) and removed on normal
 * exit, on an uncaught error, on SIGINT/SIGTERM, and when the watchdog fires.
 */
export class Reaper {
  private readonly live = new Set<Child>();
  private readonly dirs = new Set<string>();
  /** Where each child's whole output goes (DIR/<tag>.log), besides its last lines in memory. */
  private logDir: string | undefined;
  private readonly logged = new Set<string>();

  constructor(watchdogMs: number) {
    process.on("exit", () => this.reapSync());
    for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
      process.on(sig, () => {
        console.error(`\n${sig}: killing every child process and removing temp dirs`);
        process.exit(130);
      });
    }
    const t = setTimeout(() => {
      console.error(`watchdog: the run exceeded ${watchdogMs / 1000} s; killing everything`);
      process.exit(2);
    }, watchdogMs);
    t.unref();
  }

  /** Keep every child's whole stdout and stderr in `dir`/<tag>.log from now on. */
  keepLogs(dir: string): void {
    mkdirSync(dir, { recursive: true });
    this.logDir = dir;
  }

  tmpdir(prefix: string): string {
    const d = mkdtempSync(join(tmpdir(), prefix));
    this.dirs.add(d);
    return d;
  }

  removeDir(d: string): void {
    rmSync(d, { recursive: true, force: true });
    this.dirs.delete(d);
  }

  spawn(tag: string, cmd: string, args: readonly string[], opts: SpawnOptions = {}): Child {
    const proc = spawn(cmd, args, { ...opts, stdio: ["ignore", "pipe", "pipe"] });
    if (proc.pid === undefined) throw new Error(`could not start ${tag} (${cmd})`);
    const c: Child = { tag, proc, pid: proc.pid, output: [] };
    const logFile = this.logDir !== undefined ? join(this.logDir, `${tag}.log`) : undefined;
    // A run starts each log afresh; a restarted child (same tag) adds to its own.
    if (logFile !== undefined && !this.logged.has(tag)) writeFileSync(logFile, "");
    this.logged.add(tag);
    const keep = (d: Buffer): void => {
      c.output.push(d.toString());
      if (logFile !== undefined) appendFileSync(logFile, d);
      if (c.output.length > 100) c.output.splice(0, c.output.length - 100);
    };
    proc.stdout?.on("data", keep);
    proc.stderr?.on("data", keep);
    proc.on("error", (e) => c.output.push(`spawn error: ${e.message}`));
    this.live.add(c);
    proc.once("exit", () => this.live.delete(c));
    return c;
  }

  /** Send `sig` and wait for the exit. */
  async kill(c: Child, sig: NodeJS.Signals = "SIGKILL", timeoutMs = 10_000): Promise<void> {
    if (c.proc.exitCode !== null || c.proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.proc.once("exit", () => r()));
    c.proc.kill(sig);
    try {
      await withTimeout(exited, timeoutMs, `${c.tag} to exit after ${sig}`);
    } catch (e) {
      if (sig === "SIGKILL") throw e;
      c.proc.kill("SIGKILL");
      await withTimeout(exited, 5_000, `${c.tag} to exit after SIGKILL`);
    }
  }

  reapSync(): void {
    for (const c of this.live) {
      try {
        c.proc.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
    this.live.clear();
    for (const d of this.dirs) rmSync(d, { recursive: true, force: true });
    this.dirs.clear();
  }
}

export function alive(c: Child | undefined): c is Child {
  return c !== undefined && c.proc.exitCode === null && c.proc.signalCode === null;
}

// ------------------------------------------------------------------------------------------ scripts

/** Whether `setpriv` can make children die with this process (util-linux; missing on some hosts). */
export const HAVE_SETPRIV = spawnSync("setpriv", ["--help"], { stdio: "ignore" }).status === 0;

/** Spawn through `reaper` so that the child also dies if this process is killed outright. */
export function spawnBounded(reaper: Reaper, cwd: string, tag: string, cmd: string, argv: string[]): Child {
  return HAVE_SETPRIV
    ? reaper.spawn(tag, "setpriv", ["--pdeathsig", "KILL", cmd, ...argv], { cwd })
    : reaper.spawn(tag, cmd, argv, { cwd });
}

/** The port a child announced with a "listening <port>" line (grpc-bare-server.ts does), once it has. */
export function announcedPort(c: Child): number | undefined {
  const m = /listening (\d+)/.exec(c.output.join(""));
  return m ? Number(m[1]) : undefined;
}

/** A line of progress with the wall-clock time. */
export function log(msg: string): void {
  console.log(`[${new Date().toISOString().slice(11, 23)}] ${msg}`);
}

export const fmt = (n: number, digits = 1): string => (Number.isFinite(n) ? n.toFixed(digits) : "-");

/** A flag's value as an integer in [min, max]; anything else ends the script with status 64. */
export function posInt(name: string, v: string | undefined, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `${min}..${max}`;
    console.error(`--${name} must be an integer ${range}, got "${v}"`);
    process.exit(64);
  }
  return n;
}

// ------------------------------------------------------------------------------------------ CPU

const CLK_TCK = 100;

/** CPU seconds (user + system) used so far by `pid`, or undefined if it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    // Field 3 (state) is f[0]: utime (14) is f[11], stime (15) is f[12].
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** Busy and total jiffies of the whole machine. */
function machineTicks(): { busy: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

/** Percent of all cores busy over the next `ms` (to warn when something else loads the machine). */
export async function machineBusyOver(ms: number): Promise<number> {
  const a = machineTicks();
  await sleep(ms);
  const b = machineTicks();
  return (100 * (b.busy - a.busy)) / Math.max(1, b.total - a.total);
}

/** Prometheus text → sum of the samples of each metric name (histogram buckets left out). */
export async function scrapeMetrics(address: string): Promise<Map<string, number>> {
  const res = await fetch(`http://${address}/metrics`, { signal: AbortSignal.timeout(2_000) });
  const text = await res.text();
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1]!.endsWith("_bucket")) continue;
    const v = Number(m[2]);
    if (Number.isFinite(v)) out.set(m[1]!, (out.get(m[1]!) ?? 0) + v);
  }
  return out;
}

export interface CpuWindow {
  /** Per tag: percent of one core used during the window. */
  perProcess: Map<string, number>;
  /** Percent of all cores busy during the window. */
  machineBusy: number;
}

/** CPU use of a set of processes (and of this process) between start() and stop(). */
export class CpuSampler {
  private t0 = 0;
  private before = new Map<string, number>();
  private self0 = process.cpuUsage();
  private m0 = machineTicks();

  constructor(private readonly targets: () => ReadonlyMap<string, number>) {}

  start(): void {
    this.t0 = performance.now();
    this.before = new Map();
    for (const [tag, pid] of this.targets()) {
      const s = cpuSeconds(pid);
      if (s !== undefined) this.before.set(tag, s);
    }
    this.self0 = process.cpuUsage();
    this.m0 = machineTicks();
  }

  stop(): CpuWindow {
    const wall = (performance.now() - this.t0) / 1000;
    const perProcess = new Map<string, number>();
    for (const [tag, pid] of this.targets()) {
      const a = this.before.get(tag);
      const b = cpuSeconds(pid);
      if (a !== undefined && b !== undefined) perProcess.set(tag, (100 * (b - a)) / wall);
    }
    const self = process.cpuUsage(this.self0);
    perProcess.set("bench client", (100 * (self.user + self.system)) / 1e6 / wall);
    const m1 = machineTicks();
    const machineBusy = (100 * (m1.busy - this.m0.busy)) / Math.max(1, m1.total - this.m0.total);
    return { perProcess, machineBusy };
  }
}

// ------------------------------------------------------------------------------------------ load

export interface LoadResult {
  concurrency: number;
  /** Completions inside the measured window, per second. */
  opsPerSec: number;
  p50: number;
  p99: number;
  errors: number;
  firstError: string | undefined;
  cpu: CpuWindow | undefined;
  /** Extra findings about the window (server-side metrics), if any. */
  diag?: string;
  /** The measured window on the monotonic clock, in µs (the clock of V8 CPU profiles). */
  windowUs: [number, number];
}

/** Called when the measured window starts and ends (after the warm-up). */
export interface WindowHooks {
  sampler?: CpuSampler;
  onStart?: () => void;
  onStop?: () => void;
}

export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/**
 * Closed loop: `concurrency` workers each issue `op` back to back. Warm up for `warmupMs`, then
 * count completions and latencies (of operations that start and end inside the window) for
 * `measureMs`. CPU is sampled over the same window (hooks.sampler).
 */
export async function runLoad(
  concurrency: number,
  warmupMs: number,
  measureMs: number,
  op: (worker: number) => Promise<unknown>,
  hooks: WindowHooks = {},
): Promise<LoadResult> {
  const t0 = performance.now();
  const mStart = t0 + warmupMs;
  const mEnd = mStart + measureMs;
  const lat: number[] = [];
  let done = 0;
  let errors = 0;
  let firstError: string | undefined;
  let cpu: CpuWindow | undefined;
  let started = false;
  let stopped = false;
  const monoUs = (): number => Number(process.hrtime.bigint() / 1000n);
  const windowUs: [number, number] = [0, 0];
  const startWindow = (): void => {
    if (started) return;
    started = true;
    windowUs[0] = monoUs();
    hooks.sampler?.start();
    hooks.onStart?.();
  };
  const stopWindow = (): void => {
    if (stopped || !started) return;
    stopped = true;
    windowUs[1] = monoUs();
    cpu = hooks.sampler?.stop();
    hooks.onStop?.();
  };
  const startTimer = setTimeout(startWindow, warmupMs);
  const stopTimer = setTimeout(stopWindow, warmupMs + measureMs);
  const worker = async (w: number): Promise<void> => {
    for (;;) {
      const s = performance.now();
      if (s >= mEnd) return;
      try {
        await op(w);
      } catch (e) {
        const t = performance.now();
        if (t > mStart && t <= mEnd) errors++;
        firstError ??= e instanceof Error ? e.message : String(e);
        await sleep(5);
        continue;
      }
      const e = performance.now();
      if (e > mStart && e <= mEnd) done++;
      if (s >= mStart && e <= mEnd) lat.push(e - s);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  // The workers may all finish a moment before the timer fires: close the window here then.
  clearTimeout(startTimer);
  clearTimeout(stopTimer);
  startWindow();
  stopWindow();
  const sorted = Float64Array.from(lat).sort();
  return {
    concurrency,
    opsPerSec: done / (measureMs / 1000),
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    errors,
    firstError,
    cpu,
    windowUs,
  };
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

// ------------------------------------------------------------------------------------------ protobuf

function pushVarint(out: number[], n: bigint): void {
  while (n >= 0x80n) {
    out.push(Number(n & 0x7fn) | 0x80);
    n >>= 7n;
  }
  out.push(Number(n));
}

/** A message of length-delimited fields only (field number → bytes), in order. */
export function pbBytesMessage(fields: readonly [number, Uint8Array][]): Buffer {
  const out: number[] = [];
  for (const [f, b] of fields) {
    pushVarint(out, BigInt((f << 3) | 2));
    pushVarint(out, BigInt(b.byteLength));
    for (const x of b) out.push(x);
  }
  return Buffer.from(out);
}

/** Decode one message level: field number → values (varints as bigint, so 64-bit ids stay exact). */
export function pbFields(buf: Uint8Array): Map<number, (bigint | Uint8Array)[]> {
  const out = new Map<number, (bigint | Uint8Array)[]>();
  let i = 0;
  const varint = (): bigint => {
    let r = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[i++];
      if (b === undefined) throw new Error("protobuf: truncated varint");
      r |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return r;
      shift += 7n;
    }
  };
  while (i < buf.length) {
    const tag = Number(varint());
    const field = tag >>> 3;
    let v: bigint | Uint8Array;
    switch (tag & 7) {
      case 0:
        v = varint();
        break;
      case 2: {
        const len = Number(varint());
        v = buf.subarray(i, i + len);
        i += len;
        break;
      }
      case 1:
        i += 8;
        continue;
      case 5:
        i += 4;
        continue;
      default:
        throw new Error(`protobuf: wire type ${tag & 7} not handled`);
    }
    const list = out.get(field) ?? [];
    list.push(v);
    out.set(field, list);
  }
  return out;
}

function pbUint(m: Map<number, (bigint | Uint8Array)[]>, f: number): bigint {
  const v = m.get(f)?.[0];
  return typeof v === "bigint" ? v : 0n;
}

function pbSub(m: Map<number, (bigint | Uint8Array)[]>, f: number): Map<number, (bigint | Uint8Array)[]> {
  const v = m.get(f)?.[0];
  return v instanceof Uint8Array ? pbFields(v) : new Map<number, (bigint | Uint8Array)[]>();
}

// ------------------------------------------------------------------------------------------ etcd

export interface EtcdStatus {
  /** 64-bit ids: kept as bigint (as JS numbers they lose precision). */
  memberId: bigint;
  leader: bigint;
  raftTerm: bigint;
  raftIndex: bigint;
  appliedIndex: bigint;
}

const identity = (b: Buffer): Buffer => b;

/**
 * Just enough of etcd's v3 gRPC API (KV/Put and Maintenance/Status) over @grpc/grpc-js, the same
 * gRPC library the ledger client uses, so both sides pay the same client costs.
 */
export class EtcdKv {
  private readonly client: Client;

  constructor(
    readonly address: string,
    private readonly attemptMs = 3_000,
  ) {
    this.client = new Client(address, credentials.createInsecure(), {
      "grpc.enable_channelz": 0, // as the ledger's client: one library, the same options
      "grpc.initial_reconnect_backoff_ms": 100,
      "grpc.max_reconnect_backoff_ms": 1_000,
    });
  }

  private unary(method: string, req: Buffer, deadlineMs: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest<Buffer, Buffer>(
        method,
        identity,
        identity,
        req,
        new Metadata(),
        { deadline: Date.now() + deadlineMs },
        (err: ServiceError | null, res?: Buffer) => {
          if (err || !res) reject(err ?? new Error(`${method}: empty response`));
          else resolve(res);
        },
      );
    });
  }

  /** A PutRequest (key = 1, value = 2) made once with `putRequest`; resolves with the raw response. */
  put(req: Buffer): Promise<Buffer> {
    return this.unary("/etcdserverpb.KV/Put", req, this.attemptMs);
  }

  async status(deadlineMs = 1_000): Promise<EtcdStatus> {
    const m = pbFields(await this.unary("/etcdserverpb.Maintenance/Status", Buffer.alloc(0), deadlineMs));
    const header = pbSub(m, 1);
    return {
      memberId: pbUint(header, 2),
      leader: pbUint(m, 4),
      raftIndex: pbUint(m, 5),
      raftTerm: pbUint(m, 6),
      appliedIndex: pbUint(m, 7),
    };
  }

  close(): void {
    this.client.close();
  }
}

export function putRequest(key: string, value: Uint8Array): Buffer {
  return pbBytesMessage([
    [1, Buffer.from(key)],
    [2, value],
  ]);
}

/** raft_term of a PutResponse's header. */
export function putResponseTerm(res: Uint8Array): bigint {
  return pbUint(pbSub(pbFields(res), 1), 4);
}

// ------------------------------------------------------------------------------------------ profiles

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface HotSpot {
  selfMs: number;
  /** Percent of the busy (non-idle) time. */
  percent: number;
  functionName: string;
  location: string;
}

export interface ProfileSummary {
  file: string;
  busyMs: number;
  idleMs: number;
  spots: HotSpot[];
  /** Self time per source file (node_modules collapsed to the package). */
  byFile: { selfMs: number; percent: number; file: string }[];
}

// tsx compiles each .ts file with whitespace minified (so a profile sees nearly everything on line
// 1) and keeps the output with its source map in a cache directory: map profile positions back to
// the TypeScript source through it.

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Source-map "mappings" → per generated line, segments [generatedColumn, sourceLine] (0-based). */
function decodeMappings(mappings: string): [number, number][][] {
  const lines: [number, number][][] = [];
  let srcLine = 0;
  for (const line of mappings.split(";")) {
    const segs: [number, number][] = [];
    let genCol = 0;
    for (const seg of line.split(",")) {
      if (seg === "") continue;
      const vals: number[] = [];
      let value = 0;
      let shift = 0;
      for (const ch of seg) {
        const d = B64.indexOf(ch);
        value += (d & 31) << shift;
        if (d & 32) shift += 5;
        else {
          vals.push(value & 1 ? -(value >>> 1) : value >>> 1);
          value = 0;
          shift = 0;
        }
      }
      genCol += vals[0] ?? 0;
      if (vals.length >= 4) {
        srcLine += vals[2]!;
        segs.push([genCol, srcLine]);
      }
    }
    lines.push(segs);
  }
  return lines;
}

interface CompiledSource {
  code: string;
  lines: [number, number][][];
}

/** Compiled versions of `sources` in the tsx cache, newest first. */
function tsxCompiled(sources: ReadonlySet<string>): Map<string, CompiledSource[]> {
  const out = new Map<string, CompiledSource[]>();
  const uid = process.getuid?.() ?? 0;
  const dir = join(tmpdir(), `tsx-${uid}`);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  const found: { src: string; mtime: number; c: CompiledSource }[] = [];
  for (const name of names) {
    let text: string;
    try {
      text = readFileSync(join(dir, name), "utf8");
    } catch {
      continue;
    }
    if (![...sources].some((src) => text.includes(src))) continue;
    try {
      const j = JSON.parse(text) as { code?: unknown; map?: { sources?: unknown; mappings?: unknown } };
      const src = Array.isArray(j.map?.sources) ? (j.map.sources[0] as unknown) : undefined;
      if (typeof j.code !== "string" || typeof j.map?.mappings !== "string" || typeof src !== "string")
        continue;
      if (!sources.has(src)) continue;
      const mtime = statSync(join(dir, name)).mtimeMs;
      found.push({ src, mtime, c: { code: j.code, lines: decodeMappings(j.map.mappings) } });
    } catch {
      continue;
    }
  }
  found.sort((a, b) => b.mtime - a.mtime);
  for (const f of found) {
    const list = out.get(f.src) ?? [];
    list.push(f.c);
    out.set(f.src, list);
  }
  return out;
}

function sourceLine(c: CompiledSource, line: number, col: number): number | undefined {
  const segs = c.lines[line];
  if (!segs || segs.length === 0) return undefined;
  let best: number | undefined;
  for (const [g, l] of segs) {
    if (g > col) break;
    best = l;
  }
  return best ?? segs[0]![1];
}

/** Whether `fn` is named near `col` of line `line` of the compiled code (to pick the right version). */
function namesMatch(c: CompiledSource, line: number, col: number, fn: string): boolean {
  if (fn === "" || fn === "(anonymous)") return true;
  const lines = c.code.split("\n");
  const text = lines[line] ?? "";
  return text.slice(Math.max(0, col - 60), col + fn.length + 60).includes(fn.replace(/^(get|set) /, ""));
}

/**
 * Self time per function (summed over its call sites) of the main thread's .cpuprofile in `dir`,
 * counting only samples inside `windowUs` (monotonic µs) when given
 * (Node names it CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; thread 0 is the main one, the
 * others are loader workers).
 */
export function hotSpots(
  dir: string,
  top: number,
  repoRoot: string,
  windowUs?: readonly [number, number],
): ProfileSummary {
  const files = readdirSync(dir)
    .filter((f) => /\.0\.\d+\.cpuprofile$/.test(f))
    .sort();
  const file = files[files.length - 1];
  if (!file) throw new Error(`no main-thread .cpuprofile in ${dir}`);
  const p = JSON.parse(readFileSync(join(dir, file), "utf8")) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  // Map frames of the repository's own .ts files back to their source lines.
  const tsUrls = new Set<string>();
  for (const n of p.nodes) {
    const path = n.callFrame.url.replace(/^file:\/\//, "");
    if (path.endsWith(".ts") && !path.includes("/node_modules/")) tsUrls.add(path);
  }
  const compiled = tsxCompiled(tsUrls);
  const chosen = new Map<string, CompiledSource | undefined>();
  for (const [src, versions] of compiled) {
    const frames = p.nodes.map((n) => n.callFrame).filter((cf) => cf.url.replace(/^file:\/\//, "") === src);
    let best: CompiledSource | undefined;
    let bestScore = -1;
    for (const v of versions) {
      const score = frames.filter((cf) =>
        namesMatch(v, cf.lineNumber, cf.columnNumber, cf.functionName),
      ).length;
      if (score > bestScore) {
        best = v;
        bestScore = score;
      }
    }
    chosen.set(src, best);
  }
  const lineOf = (cf: ProfileNode["callFrame"]): number => {
    const c = chosen.get(cf.url.replace(/^file:\/\//, ""));
    const l = c ? sourceLine(c, cf.lineNumber, cf.columnNumber) : undefined;
    return (l ?? cf.lineNumber) + 1;
  };
  const self = new Map<string, { ms: number; fn: string; loc: string }>();
  const perFile = new Map<string, number>();
  let busyMs = 0;
  let idleMs = 0;
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    if (windowUs && (t < windowUs[0] || t > windowUs[1])) continue;
    const n = byId.get(p.samples[i]!);
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000;
    if (!n) continue;
    const cf = n.callFrame;
    const fn = cf.functionName || "(anonymous)";
    if (fn === "(idle)") {
      idleMs += dt;
      continue;
    }
    busyMs += dt;
    const url = cf.url
      .replace(/^file:\/\//, "")
      .replace(/.*\/node_modules\/\.pnpm\/[^/]+\/node_modules\//, "node_modules/")
      .replace(`${repoRoot}/`, "");
    const loc = url ? `${url}:${lineOf(cf)}` : "(native)";
    const key = `${fn}@${loc}`;
    const e = self.get(key) ?? { ms: 0, fn, loc };
    e.ms += dt;
    self.set(key, e);
    const pkg = /^node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
    const fileKey = pkg ? `node_modules/${pkg}` : url || `(native) ${fn}`;
    perFile.set(fileKey, (perFile.get(fileKey) ?? 0) + dt);
  }
  const spots = [...self.values()]
    .sort((a, b) => b.ms - a.ms)
    .slice(0, top)
    .map((e) => ({ selfMs: e.ms, percent: (100 * e.ms) / busyMs, functionName: e.fn, location: e.loc }));
  const byFile = [...perFile]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([f, ms]) => ({ selfMs: ms, percent: (100 * ms) / busyMs, file: f }));
  return { file: join(dir, file), busyMs, idleMs, spots, byFile };
}

// ------------------------------------------------------------------------------------------ GC

/** What a process's `--trace-gc` lines say about its garbage collector under load. */
export interface GcSummary {
  scavenges: number;
  markCompacts: number;
  /** Old generation growth between consecutive scavenges less than 1 s apart, per second. */
  promotedMBps: number;
  /** Scavenges per second over those same intervals. */
  scavengesPerS: number;
  /** Longest main-thread pause of each kind. */
  maxScavengeMs: number;
  maxMarkCompactMs: number;
}

const GC_LINE =
  /^\[\d+:(0x[0-9a-f]+)\]\s+(\d+) ms: (Scavenge|Mark-Compact)[^\d]*[\d.]+ \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB, ([\d.]+)/;

/**
 * Reads `--trace-gc` output. Only the main isolate counts (the one with the most lines; a
 * loader's worker thread prints its own). A scavenge that leaves more heap than the one before
 * promoted the difference into the old generation: under load that is what the next full
 * collection (a pause of tens of ms) must clear.
 */
export function gcSummary(text: string): GcSummary | undefined {
  const events = text
    .split("\n")
    .map((l) => GC_LINE.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({
      isolate: m[1]!,
      atMs: Number(m[2]),
      kind: m[3]!,
      afterMB: Number(m[4]),
      pauseMs: Number(m[5]),
    }));
  const perIsolate = new Map<string, number>();
  for (const e of events) perIsolate.set(e.isolate, (perIsolate.get(e.isolate) ?? 0) + 1);
  const main = [...perIsolate].sort((a, b) => b[1] - a[1])[0]?.[0];
  if (main === undefined) return undefined;
  const mine = events.filter((e) => e.isolate === main);
  let promoted = 0;
  let spanMs = 0;
  let pairs = 0;
  for (let i = 1; i < mine.length; i++) {
    const [a, b] = [mine[i - 1]!, mine[i]!];
    if (a.kind !== "Scavenge" || b.kind !== "Scavenge" || b.atMs - a.atMs >= 1000) continue;
    promoted += Math.max(0, b.afterMB - a.afterMB);
    spanMs += b.atMs - a.atMs;
    pairs++;
  }
  const pauses = (kind: string): number[] => mine.filter((e) => e.kind === kind).map((e) => e.pauseMs);
  return {
    scavenges: pauses("Scavenge").length,
    markCompacts: pauses("Mark-Compact").length,
    promotedMBps: spanMs > 0 ? (promoted * 1000) / spanMs : 0,
    scavengesPerS: spanMs > 0 ? (pairs * 1000) / spanMs : 0,
    maxScavengeMs: Math.max(0, ...pauses("Scavenge")),
    maxMarkCompactMs: Math.max(0, ...pauses("Mark-Compact")),
  };
}
