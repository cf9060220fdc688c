// Command line of the simulator:
//   pnpm sim -- --seeds N [--from S] [--workers W]   run seeds S..S+N-1 (3 and 5 node clusters)
//   pnpm sim -- --seed S                              replay one seed verbosely
// The last line printed is exactly `sim: N seeds, V violations`; the exit code is 1 when V > 0.
import { parseArgs } from "node:util";
import { runSeeds } from "./runner.js";
import { Simulation } from "./simulation.js";

const OPTIONS = {
  seed: { type: "string" },
  seeds: { type: "string" },
  from: { type: "string" },
  workers: { type: "string" },
  mutation: { type: "string" },
  quiet: { type: "boolean" },
  "trace-messages": { type: "boolean" },
} as const;

function intArg(values: Record<string, string | boolean | undefined>, key: string, def: number): number {
  const v = values[key];
  if (v === undefined) return def;
  const n = Number(v);
  if (typeof v !== "string" || !Number.isSafeInteger(n) || n < 0)
    throw new Error(`--${key} must be a non-negative integer, got ${String(v)}`);
  return n;
}

async function main(): Promise<number> {
  // `pnpm sim -- --seeds N` passes the "--" along.
  const argv = process.argv.slice(2).filter((a, i) => i > 0 || a !== "--");
  const { values } = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false });
  if (values.seed !== undefined) {
    const seed = intArg(values, "seed", 0);
    const r = new Simulation({
      seed,
      verbose: values.quiet !== true,
      traceMessages: values["trace-messages"] === true,
    }).run();
    for (const v of r.violations)
      console.log(`VIOLATION seed=${seed} t=${(v.time / 10).toFixed(1)} ${v.rule}: ${v.detail}`);
    console.log(`stats ${JSON.stringify(r.stats)}`);
    console.log(`sim: 1 seeds, ${r.violations.length} violations`);
    return r.violations.length > 0 ? 1 : 0;
  }
  const seeds = intArg(values, "seeds", 100);
  const from = intArg(values, "from", 1);
  const workers = intArg(values, "workers", 2);
  const mutation = values.mutation;
  const summary = await runSeeds({ from, count: seeds, workers, ...(mutation ? { mutation } : {}) });
  console.log(`sim: ${seeds} seeds, ${summary.violations} violations`);
  return summary.violations > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`sim: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(2);
  },
);
