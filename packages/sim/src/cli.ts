// Command line of the simulator:
//   pnpm sim -- --seeds N [--from S] [--workers W]   run seeds S..S+N-1 (3 and 5 node clusters)
//   pnpm sim -- --seed S                              replay one seed verbosely
// The last line printed is exactly `sim: N seeds, V violations`; the exit code is 1 when V > 0.
import { runSeeds } from "./runner.js";
import { Simulation } from "./simulation.js";

function parseArgs(argv: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") continue;
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${a}`);
    const key = a.slice(2);
    const next = argv[i + 1];
    if (next === undefined || next.startsWith("--")) out.set(key, "true");
    else {
      out.set(key, next);
      i++;
    }
  }
  return out;
}

function intArg(args: Map<string, string>, key: string, def: number): number {
  const v = args.get(key);
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${key} must be a non-negative integer, got ${v}`);
  return n;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  for (const k of args.keys()) {
    if (!["seed", "seeds", "from", "workers", "quiet", "mutation", "trace-messages"].includes(k))
      throw new Error(`unknown option --${k}`);
  }
  if (args.has("seed")) {
    const seed = intArg(args, "seed", 0);
    const r = new Simulation({
      seed,
      verbose: !args.has("quiet"),
      traceMessages: args.has("trace-messages"),
    }).run();
    for (const v of r.violations)
      console.log(`VIOLATION seed=${seed} t=${(v.time / 10).toFixed(1)} ${v.rule}: ${v.detail}`);
    console.log(`stats ${JSON.stringify(r.stats)}`);
    console.log(`sim: 1 seeds, ${r.violations.length} violations`);
    return r.violations.length > 0 ? 1 : 0;
  }
  const seeds = intArg(args, "seeds", 100);
  const from = intArg(args, "from", 1);
  const workers = intArg(args, "workers", 2);
  const mutation = args.get("mutation");
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
