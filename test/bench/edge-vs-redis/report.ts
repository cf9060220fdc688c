// The summary: edge against baseline per comparison, the checks, the machine's load, and with
// --profile the edge's hot spots per phase.
import { fmt, hotSpots, median, table } from "../support.js";
import type { ProfileSummary } from "../support.js";
import {
  CLIENTS,
  GRPC_CONNECTIONS,
  GRPC_SECONDS,
  GRPC_STREAMS,
  HAVE_H2LOAD,
  PROFILE_DIR,
  REPO,
  ROUNDS,
} from "./config.js";
import type { Comparison, Findings } from "./measure.js";

const kilo = (n: number): string => (Number.isFinite(n) ? `${fmt(n / 1000, 1)}k` : "-");
const mega = (n: number): string => (Number.isFinite(n) ? `${fmt(n / 1e6, 2)}M` : "-");

export function fmtUnit(v: number, unit: Comparison["unit"]): string {
  return `${unit === "ids/s" ? mega(v) : kilo(v)} ${unit}`;
}

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

/** The machine around the run: its cores, how busy before, the load average at start and end. */
export interface Machine {
  cores: number;
  busy0: number;
  load0: number[];
  load1: number[];
}

/** The table of comparisons, the checks and the machine's load; with --profile, the edge's hot spots. */
export function report(f: Findings, m: Machine): void {
  const { results, checks } = f;
  const { cores, busy0, load0, load1 } = m;
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
    for (const [key, ws] of f.windows) {
      if (ws.length === 0) continue;
      const span: [number, number] = [Math.min(...ws.map((w) => w[0])), Math.max(...ws.map((w) => w[1]))];
      printProfile(key, hotSpots(PROFILE_DIR, 25, REPO, span));
    }
  }
}
