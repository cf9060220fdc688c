// The tables: throughput and latency per concurrency, ratios, what saturated, GC.
import { fmt, median, table } from "../support.js";
import type { CpuWindow, LoadResult } from "../support.js";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import {
  ATTEMPT_MS,
  BASELINE_DIR,
  CLIENTS,
  DURATION_MS,
  FAILOVER_CONC,
  ROUNDS,
  WARMUP_MS,
} from "./config.js";
import type { SystemResult } from "./systems.js";

export function describe(r: LoadResult): string {
  const cpu = r.cpu ? ` | cpu ${cpuText(r.cpu)}` : "";
  const err = r.errors > 0 ? ` | ${r.errors} errors (first: ${r.firstError})` : "";
  return `${fmt(r.opsPerSec, 0)} ops/s, p50 ${fmt(r.p50, 2)} ms, p99 ${fmt(r.p99, 2)} ms${err}${cpu}`;
}

function cpuText(c: CpuWindow): string {
  const parts = [...c.perProcess].map(([tag, pct]) => `${tag} ${fmt(pct, 0)}%`);
  return `${parts.join(", ")}; machine ${fmt(c.machineBusy, 0)}% of ${cores()} cores`;
}

export function cores(): number {
  return availableParallelism();
}

/** Which process limits this window: one at ≥ 80% of a core (a Node process's main thread cannot use more than one). */
function saturation(c: CpuWindow | undefined): string {
  if (!c) return "-";
  const top = [...c.perProcess].sort((a, b) => b[1] - a[1])[0];
  if (!top) return "-";
  if (c.machineBusy >= 90)
    return `machine (${fmt(c.machineBusy, 0)}% of all cores; top: ${top[0]} ${fmt(top[1], 0)}%)`;
  if (top[1] >= 80) return `${top[0]} (${fmt(top[1], 0)}% of a core)`;
  if (top[1] >= 65) return `close: ${top[0]} at ${fmt(top[1], 0)}% of a core`;
  return `none (top: ${top[0]} ${fmt(top[1], 0)}%): latency-bound`;
}

export function report(ledger: SystemResult, etcd: SystemResult | undefined, bare?: SystemResult): void {
  console.log("");
  console.log(
    `== LeaseSegment (ledger) vs synced Put (etcd ${etcdVersion() ?? "-"}): 3 nodes on 127.0.0.1, fsync on, ` +
      `${DURATION_MS / 1000} s per window after ${WARMUP_MS / 1000} s warm-up, ${CLIENTS} client(s), against the leader; ` +
      `each row the median of ${ROUNDS} round(s), systems measured in rotating order`,
  );
  const rows: string[][] = [
    ["concurrency", "ledger ops/s", "p50 ms", "p99 ms", "etcd ops/s", "p50 ms", "p99 ms", "ledger/etcd"],
  ];
  for (let i = 0; i < ledger.rows.length; i++) {
    const l = ledger.rows[i]!;
    const e = etcd?.rows[i];
    rows.push([
      String(l.concurrency),
      fmt(l.opsPerSec, 0),
      fmt(l.p50, 2),
      fmt(l.p99, 2),
      e ? fmt(e.opsPerSec, 0) : "-",
      e ? fmt(e.p50, 2) : "-",
      e ? fmt(e.p99, 2) : "-",
      e ? `${fmt(l.opsPerSec / e.opsPerSec, 2)}x` : "-",
    ]);
  }
  console.log(table(rows));
  if (bare && bare.rows.length > 0) {
    console.log("");
    console.log(
      "== The grpc-js ceiling: a bare grpc-js server answering LeaseSegment at once (no Raft, no disk), same client",
    );
    const b: string[][] = [
      ["concurrency", "bare ops/s", "p50 ms", "server CPU ms/op", "ledger/bare", "etcd/bare"],
    ];
    for (let i = 0; i < bare.rows.length; i++) {
      const r = bare.rows[i]!;
      const l = ledger.rows[i];
      const e = etcd?.rows[i];
      const pct = [...(r.cpu?.perProcess ?? [])].find(([tag]) => tag.includes("bare"))?.[1];
      b.push([
        String(r.concurrency),
        fmt(r.opsPerSec, 0),
        fmt(r.p50, 2),
        pct === undefined || r.opsPerSec === 0 ? "-" : fmt((10 * pct) / r.opsPerSec, 3),
        l ? `${fmt(l.opsPerSec / r.opsPerSec, 2)}x` : "-",
        e ? `${fmt(e.opsPerSec / r.opsPerSec, 2)}x` : "-",
      ]);
    }
    console.log(table(b));
  }
  console.log("");
  console.log("== What saturates (CPU over each measured window, % of one core)");
  const sat: string[][] = [["system", "concurrency", "leader CPU ms/op", "client CPU ms/op", "limited by"]];
  for (const s of [ledger, etcd]) {
    if (!s) continue;
    for (const r of s.rows) {
      sat.push([
        s.name,
        String(r.concurrency),
        cpuMsPerOp(r, (t) => t.includes("leader")),
        cpuMsPerOp(r, (t) => t === "bench client"),
        saturation(r.cpu),
      ]);
    }
  }
  console.log(table(sat));
  for (const s of [ledger, etcd]) {
    if (!s) continue;
    for (const r of s.rows) if (r.cpu) console.log(`  ${s.name} c=${r.concurrency}: ${cpuText(r.cpu)}`);
  }
  if (ledger.rows.some((r) => r.diag)) {
    console.log("");
    console.log("== Ledger Raft loop over each window (from the nodes' /metrics)");
    for (const r of ledger.rows) if (r.diag) console.log(`  c=${r.concurrency}: ${r.diag}`);
  }
  for (const s of [ledger, etcd]) {
    if (!s || s.failovers.length === 0) continue;
    console.log("");
    console.log(
      `== Failover (${s.name}): SIGKILL of the leader with ${FAILOVER_CONC} writers (attempt deadline ${ATTEMPT_MS} ms); ` +
        "ms to the next write committed in a newer term, and to a survivor reporting the new leader",
    );
    const f: string[][] = [["round", "killed", "new leader", "to new leader ms", "to next success ms"]];
    s.failovers.forEach((r, i) =>
      f.push([String(i + 1), r.from, r.to, fmt(r.toLeaderMs, 0), fmt(r.toSuccessMs, 0)]),
    );
    f.push([
      "median",
      "",
      "",
      fmt(median(s.failovers.map((r) => r.toLeaderMs)), 0),
      fmt(median(s.failovers.map((r) => r.toSuccessMs)), 0),
    ]);
    console.log(table(f));
  }
  for (const s of [ledger, etcd]) if (s?.note && s.failovers.length > 0) console.log(`\n${s.note}`);
}

/** CPU ms per operation of the first process whose tag matches, over a window ("-" if none). */
function cpuMsPerOp(r: LoadResult, match: (tag: string) => boolean): string {
  const pct = [...(r.cpu?.perProcess ?? [])].find(([tag]) => match(tag))?.[1];
  return pct === undefined || r.opsPerSec === 0 ? "-" : fmt((10 * pct) / r.opsPerSec, 3);
}

/** This checkout's ledger against the one of --baseline, measured in the same rounds. */
export function reportBaseline(ledger: SystemResult, base: SystemResult): void {
  console.log(`\n== This ledger against the one in ${BASELINE_DIR} (same rounds, same client)`);
  const rows: string[][] = [
    ["concurrency", "ledger ops/s", "base ops/s", "ledger/base", "leader CPU ms/op", "base leader CPU ms/op"],
  ];
  const leaderMs = (r: LoadResult): string => cpuMsPerOp(r, (t) => t.includes("leader"));
  ledger.rows.forEach((r, i) => {
    const b = base.rows[i]!;
    rows.push([
      String(r.concurrency),
      fmt(r.opsPerSec, 0),
      fmt(b.opsPerSec, 0),
      b.opsPerSec > 0 ? `${fmt(r.opsPerSec / b.opsPerSec, 2)}x` : "-",
      leaderMs(r),
      leaderMs(b),
    ]);
  });
  console.log(table(rows));
}

function etcdVersion(): string | undefined {
  const r = spawnSync("etcd", ["--version"], { encoding: "utf8" });
  return r.status === 0 ? /etcd Version: (\S+)/.exec(r.stdout)?.[1] : undefined;
}

export function etcdOnPath(): boolean {
  return (process.env.PATH ?? "").split(":").some((d) => d !== "" && existsSync(join(d, "etcd")));
}
