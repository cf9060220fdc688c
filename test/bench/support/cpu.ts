// CPU of processes and of the machine, sampled from /proc over measured windows.
import { readFileSync } from "node:fs";
import { sleep } from "./run.js";

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
export function machineTicks(): { busy: number; total: number } {
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
