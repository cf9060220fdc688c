// Benchmark: the segment ledger against etcd on the same machine, in the same run.
//
//   pnpm bench:ledger                       # or: node --import tsx test/bench/ledger-vs-etcd.ts
//   pnpm bench:ledger --duration 10 --concurrency 1,16,64,128 --failovers 5
//   pnpm bench:ledger --profile /tmp/prof --concurrency 64   # ledger only: the leader's CPU hot spots
//   pnpm bench:ledger --no-etcd --node-options=--trace-gc --logs /tmp/gc   # the nodes' collections
//
// 1. A 3-node ledger on loopback (real processes, fsync on, default tick): LeaseSegment ops/s and
//    p50/p99 latency at each client concurrency, sent to the leader directly.
// 2. A 3-member etcd (Debian `etcd-server`, default fsync) on loopback: synced Put of a small key
//    at the same concurrencies, against the leader, through the same gRPC library (@grpc/grpc-js).
// 3. A bare grpc-js server answering LeaseSegment at once (no Raft, no disk), same client: the most
//    any grpc-js server gets out of this machine and this client, so "ledger/bare" says how much
//    of that ceiling the ledger keeps, and "etcd/bare" where a Go server stands against it.
// 4. Failover: SIGKILL of the leader while a client writes at concurrency 4; time to the next
//    success committed in a newer term. Repeated, restarting the killed member each time.
// Every system is started first, stays up, and gets --settle (default 20) seconds of untimed load
// before any window; --rounds (default 3) rounds each measure every system
// at every concurrency in a rotating order, and each row reported is the round with the median
// ops/s: noise on these shared machines then falls on all systems alike.
// CPU of every server process and of this client is sampled from /proc over each window, so the
// output says which process saturates. Every process and temp dir is removed at the end, also on
// error or Ctrl-C; children also die with this process (setpriv --pdeathsig).
import type { LoadResult } from "./support.js";
import { readFileSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { upBare } from "./ledger-vs-etcd/bare.js";
import {
  BASELINE_DIR,
  CLIENTS,
  CONCURRENCY,
  DURATION_MS,
  FAILOVERS,
  LEASE_SIZE,
  NODE_OPTIONS,
  PROFILE_DIR,
  ROUNDS,
  SETTLE_MS,
  WARMUP_MS,
  args,
} from "./ledger-vs-etcd/config.js";
import { upEtcd } from "./ledger-vs-etcd/etcd.js";
import { fmt, gcSummary, HAVE_SETPRIV, log, machineBusyOver, table } from "./support.js";
import { upLedger } from "./ledger-vs-etcd/ledger.js";
import { cores, etcdOnPath, report, reportBaseline } from "./ledger-vs-etcd/report.js";
import type { System, SystemResult } from "./ledger-vs-etcd/systems.js";

/** With --trace-gc and --logs: each process's collections, from its log. */
function reportGc(dir: string): void {
  const rows: string[][] = [];
  for (const f of readdirSync(dir)
    .filter((n) => n.endsWith(".log"))
    .sort()) {
    const g = gcSummary(readFileSync(join(dir, f), "utf8"));
    if (!g) continue;
    rows.push([
      f.slice(0, -4),
      fmt(g.scavengesPerS),
      fmt(g.promotedMBps),
      String(g.markCompacts),
      fmt(g.maxScavengeMs),
      fmt(g.maxMarkCompactMs),
    ]);
  }
  console.log("\n== Garbage collection under load (--trace-gc, main isolate; logs in " + dir + ")");
  console.log(
    table([
      ["process", "scavenges/s", "promoted MB/s", "mark-compacts", "max scavenge ms", "max mark-compact ms"],
      ...rows,
    ]),
  );
}

async function main(): Promise<void> {
  const tStart = performance.now();
  log(
    `node ${process.version}, ${cores()} cores; concurrency ${CONCURRENCY.join("/")}, ` +
      `${DURATION_MS / 1000} s + ${WARMUP_MS / 1000} s warm-up per row, ${CLIENTS} client(s), lease size ${LEASE_SIZE}` +
      (HAVE_SETPRIV ? "" : " (setpriv missing: children die only on a clean exit of this script)"),
  );
  const idle = await machineBusyOver(1_000);
  const busyNote =
    idle > 15
      ? `WARNING: the machine was already ${fmt(idle, 0)}% busy before the run (other processes): ` +
        "the figures below are depressed and noisy; run again on a quiet machine"
      : undefined;
  log(`machine ${fmt(idle, 0)}% busy before the run${busyNote ? ` — ${busyNote}` : ""}`);
  const systems: System[] = [];
  try {
    const ledgerSys = await upLedger();
    systems.push(ledgerSys);
    if (PROFILE_DIR) {
      const ledger: SystemResult = { name: "ledger", rows: [], failovers: [], note: undefined };
      if (SETTLE_MS > 0) await ledgerSys.warm(Math.max(...CONCURRENCY), SETTLE_MS);
      for (const c of CONCURRENCY) ledger.rows.push(await ledgerSys.measure(c));
      // Only the measured windows count (start-up, compilation and warm-up left out).
      const spots = await ledgerSys.profile!([ledger.rows[0]!.windowUs[0], ledger.rows.at(-1)!.windowUs[1]]);
      report(ledger, undefined);
      console.log(
        `\n== Leader CPU profile (${spots.file}): busy ${fmt(spots.busyMs, 0)} ms, idle ${fmt(spots.idleMs, 0)} ms` +
          " (measured windows only)",
      );
      const rows: string[][] = [["self ms", "% of busy", "function", "location"]];
      for (const x of spots.spots)
        rows.push([fmt(x.selfMs, 0), fmt(x.percent, 1), x.functionName, x.location]);
      console.log(table(rows));
      console.log("\n== Self time by file or package");
      const files: string[][] = [["self ms", "% of busy", "file"]];
      for (const f of spots.byFile) files.push([fmt(f.selfMs, 0), fmt(f.percent, 1), f.file]);
      console.log(table(files));
      return;
    }
    if (args["no-etcd"]) {
      log("etcd: skipped (--no-etcd)");
    } else if (!etcdOnPath()) {
      log(
        "etcd: not found on PATH; skipping the etcd comparison. Install it with `apt-get install -y etcd-server` " +
          "(Debian) and run again.",
      );
    } else {
      systems.push(await upEtcd());
    }
    if (!args["no-bare"]) systems.push(await upBare());
    if (BASELINE_DIR)
      systems.push(await upLedger("base", join(BASELINE_DIR, "packages", "ledger", "src", "main.ts")));
    // Node processes keep getting faster for about 20 s after start (the optimizing compiler
    // catches up with the hot paths): a fresh ledger measured 256, 343, 395 and 489 leases/s in
    // four back-to-back windows at concurrency 1. Every system gets the same untimed load first,
    // at the highest concurrency, so the rounds compare steady states.
    if (SETTLE_MS > 0) {
      log(
        `settling: ${SETTLE_MS / 1000} s of untimed load at concurrency ${Math.max(...CONCURRENCY)} per system`,
      );
      for (const sys of systems) await sys.warm(Math.max(...CONCURRENCY), SETTLE_MS);
    }
    // All systems stay up (idle ones cost about 1% of a core); every round measures each of them
    // at each concurrency, in an order that rotates, so noise on these shared machines falls on
    // all of them alike. The row kept is the round with the median ops/s.
    const windows = new Map<string, LoadResult[][]>(systems.map((x) => [x.name, CONCURRENCY.map(() => [])]));
    for (let round = 0; round < ROUNDS; round++) {
      if (ROUNDS > 1) log(`round ${round + 1}/${ROUNDS}`);
      for (let ci = 0; ci < CONCURRENCY.length; ci++) {
        for (let k = 0; k < systems.length; k++) {
          const sys = systems[(k + round + ci) % systems.length]!;
          windows.get(sys.name)![ci]!.push(await sys.measure(CONCURRENCY[ci]!));
        }
      }
    }
    const results = new Map<string, SystemResult>();
    for (const sys of systems) {
      const rows = windows.get(sys.name)!.map((ws) => {
        const sorted = [...ws].sort((a, b) => a.opsPerSec - b.opsPerSec);
        return sorted[Math.floor((sorted.length - 1) / 2)]!;
      });
      const failovers = FAILOVERS > 0 && sys.failover ? await sys.failover() : [];
      results.set(sys.name, { name: sys.name, rows, failovers, note: sys.note });
    }
    const ledger = results.get("ledger")!;
    const etcd = results.get("etcd");
    const bare = results.get("bare");
    report(ledger, etcd, bare);
    const base = results.get("base");
    if (base) reportBaseline(ledger, base);
  } finally {
    for (const sys of systems.reverse()) await sys.down();
  }
  if (busyNote) console.log(`\n${busyNote}`);
  if (args.logs !== undefined && NODE_OPTIONS.includes("--trace-gc")) reportGc(resolve(args.logs));
  console.log(`\ntotal run time ${fmt((performance.now() - tStart) / 1000, 0)} s`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  },
);
