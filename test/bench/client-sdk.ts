// Benchmark: ids per second drawn through the client SDK in one process.
//
//   pnpm bench:client                          # or: node --import tsx test/bench/client-sdk.ts
//   pnpm bench:client --duration 10 --max-range 10000000
//
// Starts a one-node ledger and an edge (real processes on loopback, fsync on), creates a type 3
// sequence through the edge's gRPC CreateSequence, then for each way of drawing runs one client
// for a fixed time after a warm-up: `await next()`, `nextSync()` (falling back to `await next()`
// when the buffer is dry) and `await nextBatch(1000)`. `--max-range` (default 1,000,000, the
// ledger's default limits.max_segment_size) sets both the sequence's limit and the client's
// maxRangeSize. Every id is checked to be larger than the
// one before, so nothing is skipped or repeated unnoticed. Every process and temp dir is removed at
// the end, also on error or Ctrl-C.
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import type { Dispenser } from "@dispenser/client";
import { createDispenser } from "@dispenser/client";
import { LedgerClient } from "@dispenser/ledger";
import type { CreateSequenceResponse } from "@dispenser/proto";
import { DispenserClient } from "@dispenser/proto";
import type { ServiceError } from "@grpc/grpc-js";
import { credentials } from "@grpc/grpc-js";
import { EdgeProcess } from "../support/edge-process.js";
import { LedgerCluster } from "../support/ledger-cluster.js";
import { createRequest, waitForLeader } from "../support/ledger-helpers.js";

const argv = process.argv.slice(2);
const { values: args } = parseArgs({
  // `pnpm bench:client -- --flag` passes the "--" along.
  args: argv[0] === "--" ? argv.slice(1) : argv,
  options: {
    duration: { type: "string", default: "5" },
    warmup: { type: "string", default: "1" },
    "max-range": { type: "string", default: "1000000" },
  },
});
const durationMs = Number(args.duration) * 1000;
const warmupMs = Number(args.warmup) * 1000;
const maxRange = Number(args["max-range"]);
if (!(durationMs > 0) || !(warmupMs >= 0) || !Number.isSafeInteger(maxRange) || maxRange < 16) {
  console.error("usage: client-sdk.ts [--duration seconds] [--warmup seconds] [--max-range ids]");
  process.exit(2);
}

/** How often the loops read the clock, in draws (a power of two minus one, as a mask). */
const CLOCK_MASK = 0xffff;

interface Figure {
  readonly mode: string;
  readonly ids: number;
  readonly seconds: number;
  /** Draws that found the buffer empty and waited for a range. */
  readonly waits: number;
  /** Time those draws waited, in ms. */
  readonly waitedMs: number;
  readonly ranges: number;
  readonly rangeSize: number;
}

type Loop = (
  d: Dispenser,
  untilMs: number,
  last: { id: bigint },
) => Promise<{ ids: number; waits: number; waitedMs: number }>;

const LOOPS: readonly (readonly [string, Loop])[] = [
  [
    "await next()",
    async (d, untilMs, last) => {
      let ids = 0;
      let prev = last.id;
      for (;;) {
        const id = await d.next();
        if (id <= prev) throw new Error(`id ${id} after ${prev}`);
        prev = id;
        if ((++ids & CLOCK_MASK) === 0 && performance.now() >= untilMs) break;
      }
      last.id = prev;
      return { ids, waits: -1, waitedMs: -1 };
    },
  ],
  [
    "nextSync() ?? await next()",
    async (d, untilMs, last) => {
      let ids = 0;
      let waits = 0;
      let waitedMs = 0;
      let prev = last.id;
      for (;;) {
        let id = d.nextSync();
        if (id === undefined) {
          waits++;
          const w0 = performance.now();
          id = await d.next();
          waitedMs += performance.now() - w0;
        }
        if (id <= prev) throw new Error(`id ${id} after ${prev}`);
        prev = id;
        if ((++ids & CLOCK_MASK) === 0 && performance.now() >= untilMs) break;
      }
      last.id = prev;
      return { ids, waits, waitedMs };
    },
  ],
  [
    "await nextBatch(1000)",
    async (d, untilMs, last) => {
      let ids = 0;
      let prev = last.id;
      for (;;) {
        const batch = await d.nextBatch(1000);
        for (const id of batch) {
          if (id <= prev) throw new Error(`id ${id} after ${prev}`);
          prev = id;
        }
        ids += 1000;
        if ((ids & 0xfff) < 1000 && performance.now() >= untilMs) break;
      }
      last.id = prev;
      return { ids, waits: -1, waitedMs: -1 };
    },
  ],
];

const ledger = new LedgerCluster([1]);
let edge: EdgeProcess | undefined;
let cleaned = false;
function killAll(): void {
  if (cleaned) return;
  cleaned = true;
  edge?.proc?.kill("SIGKILL");
  for (const n of ledger.nodes.values()) n.proc?.kill("SIGKILL");
}
process.on("exit", killAll);
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => process.exit(130));

async function main(): Promise<void> {
  await ledger.init();
  ledger.startAll();
  const lc = new LedgerClient({ endpoints: [ledger.address(1)], totalTimeoutMs: 20_000 });
  await waitForLeader(lc);
  lc.close();
  const started = new EdgeProcess([ledger.address(1)]);
  edge = started;
  await started.init();
  await started.start();

  const admin = new DispenserClient(started.grpcAddress, credentials.createInsecure());
  await new Promise<CreateSequenceResponse>((resolve, reject) =>
    admin.createSequence(
      createRequest("bench", { limits: { maxSegmentSize: BigInt(maxRange) } }),
      (e: ServiceError | null, r: CreateSequenceResponse) => (e ? reject(e) : resolve(r)),
    ),
  );
  admin.close();

  console.log(
    `client SDK: ${durationMs / 1000} s per mode after ${warmupMs / 1000} s warm-up, one client, ` +
      `maxRangeSize ${maxRange}; node ${process.version}, ${cpus()[0]?.model ?? "?"} x${cpus().length}`,
  );
  console.log("ledger: 1 node (fsync on), edge: 1 process, both on loopback\n");

  const figures: Figure[] = [];
  const last = { id: 0n };
  for (const [mode, loop] of LOOPS) {
    const d = createDispenser({
      endpoints: [started.grpcAddress],
      sequence: "bench",
      maxRangeSize: maxRange,
    });
    try {
      await d.ready();
      // Warm-up: JIT, and the range size grows to the draw rate. Ids of later clients start above.
      last.id = 0n;
      await loop(d, performance.now() + warmupMs, last);
      const before = d.stats();
      const t0 = performance.now();
      const r = await loop(d, t0 + durationMs, last);
      const seconds = (performance.now() - t0) / 1000;
      const after = d.stats();
      figures.push({
        mode,
        ids: r.ids,
        seconds,
        waits: r.waits,
        waitedMs: r.waitedMs,
        ranges: after.ranges - before.ranges,
        rangeSize: after.rangeSize,
      });
    } finally {
      await d.close();
    }
  }

  const rows = figures.map((f) => [
    f.mode,
    (f.ids / f.seconds / 1e6).toFixed(1),
    f.ids.toLocaleString("en-US"),
    f.seconds.toFixed(2),
    f.ranges.toString(),
    f.rangeSize.toLocaleString("en-US"),
    f.waits < 0 ? "-" : f.waits.toString(),
    f.waitedMs < 0 ? "-" : f.waitedMs.toFixed(0),
  ]);
  const head = ["draw", "M ids/s", "ids", "seconds", "ranges", "range size", "waits", "waited ms"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  console.log(line(head));
  for (const r of rows) console.log(line(r));
  console.log(
    "\nwaits: draws that found the buffer empty (nextSync answered undefined) and waited for a range.\n" +
      "A loop that never yields to the event loop cannot take in the prefetched range's answer, so it\n" +
      "waits once per range; a service that yields between requests finds the next range ready.",
  );
  console.log("\nFor reference, published figures (from the projects' READMEs; NOT measured here):");
  console.log("  Baidu UidGenerator (CachedUidGenerator, Java, in process): about 6 million ids/s");
  console.log("  Tinyid with tinyid-client (Java, segments in process):     10 million ids/s and more");
}

try {
  await main();
} finally {
  await edge?.stop("SIGKILL").catch(() => undefined);
  await ledger.stop();
  killAll();
}
