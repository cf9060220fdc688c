// How fast ids are written as bulk strings, by ReplyWriter.id and by the alternatives it was chosen over.
//   node --import tsx packages/edge/test/resp/id-format-bench.ts
// Each variant runs in its own process (so one's JIT state cannot slow another), several rounds
// interleaved; the best round counts, as the least disturbed by other load on the machine.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { ReplyWriter } from "../../src/resp/index.js";
import { Prng } from "@dispenser/raft";

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const E8 = 100_000_000n;

const VARIANTS: Record<string, (w: ReplyWriter, id: bigint) => void> = {
  "bulkString(id.toString())": (w, id) => w.bulkString(id.toString()),
  "bulkString('' + Number(id)) below 2^53": (w, id) =>
    w.bulkString(id <= MAX_SAFE ? "" + Number(id) : id.toString()),
  "bulkString of two bigint halves (/ 1e8)": (w, id) => {
    const hi = id / E8;
    const lo = String(Number(id - hi * E8));
    w.bulkString(hi === 0n ? lo : String(Number(hi)) + lo.padStart(8, "0"));
  },
  "id(id): Number(id), 4 digits per lookup, below 2^53": (w, id) => w.id(id),
};

const SETS: Record<string, (rng: Prng) => bigint> = {
  "up to 7 digits": (rng) => BigInt(rng.intn(10_000_000)),
  "16 digits (< 2^53)": (rng) =>
    1_000_000_000_000_000n + BigInt(rng.u32()) * 1_000_000n + BigInt(rng.intn(1e6)),
  "19 digits": (rng) => 1_000_000_000_000_000_000n + ((BigInt(rng.u32()) << 32n) | BigInt(rng.u32())),
};

const IDS_PER_RUN = 2_000_000;
const ROUNDS = 5;

function runOne(variant: string, set: string): number {
  const write = VARIANTS[variant]!;
  const draw = SETS[set]!;
  const rng = new Prng(1);
  const ids = Array.from({ length: 4096 }, () => draw(rng));
  const w = new ReplyWriter();
  const run = (): number => {
    const t = process.hrtime.bigint();
    for (let i = 0; i < IDS_PER_RUN; i++) {
      write(w, ids[i & 4095]!);
      if ((i & 1023) === 1023) w.take(); // a batch of 1024 replies
    }
    w.take();
    return Number(process.hrtime.bigint() - t) / IDS_PER_RUN;
  };
  run(); // warm up
  return run();
}

const [variant, set] = process.argv.slice(2);
if (variant !== undefined && set !== undefined) {
  process.stdout.write(String(runOne(variant, set)));
} else {
  const self = fileURLToPath(import.meta.url);
  const best = new Map<string, number>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const v of Object.keys(VARIANTS)) {
      for (const s of Object.keys(SETS)) {
        const out = execFileSync(process.execPath, [...process.execArgv, self, v, s], { encoding: "utf8" });
        const key = `${v}\u0000${s}`;
        best.set(key, Math.min(best.get(key) ?? Infinity, Number(out)));
      }
    }
  }
  console.log(`node ${process.version}; ns per id written (best of ${ROUNDS} runs of ${IDS_PER_RUN})`);
  const rows = Object.keys(VARIANTS).map((v) => [
    v,
    ...Object.keys(SETS).map((s) => best.get(`${v}\u0000${s}`)!.toFixed(1)),
  ]);
  const header = ["variant", ...Object.keys(SETS)];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [header, ...rows]) console.log(r.map((c, i) => c.padEnd(widths[i]!)).join("  "));
}
