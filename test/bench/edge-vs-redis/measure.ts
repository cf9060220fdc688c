// The rounds as measured: throughput with the server's CPU and system calls and the machine's load
// over each, and the comparisons of edge and baseline rounds in alternation.
import { readFileSync } from "node:fs";
import { cpuSeconds, fmt, log, machineTicks } from "../support.js";
import { ROUNDS } from "./config.js";
import { fmtUnit } from "./report.js";

const monoUs = (): number => Number(process.hrtime.bigint() / 1000n);

export interface Sample {
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
export interface RoundResult {
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

export interface Comparison {
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
export async function compare(
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

/** What the phases find, for the report: comparisons, checks, and the edge's measured windows. */
export interface Findings {
  results: Comparison[];
  checks: string[];
  /** Per phase, the edge's rounds (monotonic µs): what --profile reads of its profile. */
  windows: Map<string, [number, number][]>;
}

/** Keeps a comparison, and the windows of its edge rounds under `key`. */
export function keep(f: Findings, key: string, c: Comparison): void {
  f.results.push(c);
  f.windows.set(
    key,
    c.edge.map((x) => x.windowUs),
  );
}
