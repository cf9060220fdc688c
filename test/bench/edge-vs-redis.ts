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
import { availableParallelism, loadavg } from "node:os";
import { fmt, HAVE_SETPRIV, log, machineBusyOver } from "./support.js";
import { HAVE_H2LOAD, PHASE_SET, ROUNDS, SEQUENCE, reaper } from "./edge-vs-redis/config.js";
import { batchPhase, grpcPhase } from "./edge-vs-redis/grpc.js";
import type { Findings } from "./edge-vs-redis/measure.js";
import { report } from "./edge-vs-redis/report.js";
import { respPhase } from "./edge-vs-redis/resp.js";
import { startServers, stopServers } from "./edge-vs-redis/servers.js";

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
  const found: Findings = { results: [], checks: [], windows: new Map() };
  if (PHASE_SET.has("resp")) await respPhase(s, found);
  const bodies = reaper.tmpdir("bench-edge-bodies-");
  if (PHASE_SET.has("grpc")) await grpcPhase(s, bodies, found);
  if (PHASE_SET.has("batch")) await batchPhase(s, bodies, found);
  reaper.removeDir(bodies);
  const load1 = loadavg();
  await stopServers(s);
  report(found, { cores, busy0, load0, load1 });
  console.log(`\ntotal run time ${fmt((performance.now() - tStart) / 1000, 0)} s`);
}

main().then(
  () => process.exit(),
  (e: unknown) => {
    console.error(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  },
);
