// A worker process of the seed runner: runs its share of seeds and reports each over IPC.
import { loadMutant } from "./mutations.js";
import type { SeedReport } from "./runner.js";
import type { RaftImpl } from "./simulation.js";
import { Simulation } from "./simulation.js";

async function main(): Promise<void> {
  const from = Number(process.env.SIM_FROM);
  const step = Number(process.env.SIM_STEP);
  const end = Number(process.env.SIM_END);
  const mutation = process.env.SIM_MUTATION ?? "";
  const raft: RaftImpl | undefined = mutation ? await loadMutant(mutation) : undefined;
  for (let seed = from; seed < end; seed += step) {
    const t0 = performance.now();
    const r = new Simulation({ seed, ...(raft ? { raft } : {}) }).run();
    const report: SeedReport = { seed, violations: r.violations, ms: performance.now() - t0 };
    await new Promise<void>((resolve) => process.send!(report, () => resolve()));
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
