import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";

export interface RunSeedsOptions {
  from: number;
  count: number;
  workers: number;
  mutation?: string;
  /** Stop at the first violating seed (for mutation runs). */
  stopAtFirst?: boolean;
}

export interface SeedReport {
  seed: number;
  violations: { rule: string; detail: string; time: number }[];
  ms: number;
}

/** Run seeds in worker processes (seed k goes to worker k mod W), printing each violating seed. */
export async function runSeeds(
  o: RunSeedsOptions,
): Promise<{ violations: number; firstViolatingSeed: number | undefined; ms: number }> {
  const started = Date.now();
  const workers = Math.max(1, Math.min(o.workers, o.count));
  const workerPath = fileURLToPath(new URL("./worker.ts", import.meta.url));
  let violations = 0;
  let done = 0;
  let firstViolatingSeed: number | undefined;
  const children = Array.from({ length: workers }, (_, k) =>
    fork(workerPath, [], {
      execArgv: ["--import", "tsx"],
      env: {
        ...process.env,
        SIM_FROM: String(o.from + k),
        SIM_STEP: String(workers),
        SIM_END: String(o.from + o.count),
        SIM_MUTATION: o.mutation ?? "",
      },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    }),
  );
  const progress = setInterval(() => {
    const rate = done / ((Date.now() - started) / 1000);
    process.stderr.write(
      `sim: ${done}/${o.count} seeds, ${violations} violations, ${rate.toFixed(1)} seeds/s\n`,
    );
  }, 30_000);
  try {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve, reject) => {
            child.on("message", (r: SeedReport) => {
              done++;
              if (r.violations.length > 0) {
                violations++;
                if (firstViolatingSeed === undefined || r.seed < firstViolatingSeed)
                  firstViolatingSeed = r.seed;
                for (const v of r.violations) {
                  console.log(
                    `VIOLATION seed=${r.seed} t=${(v.time / 10).toFixed(1)} ${v.rule}: ${v.detail}`,
                  );
                }
                console.log(
                  `  replay: pnpm sim -- --seed ${r.seed}${o.mutation ? ` (mutation ${o.mutation})` : ""}`,
                );
                if (o.stopAtFirst) for (const c of children) c.kill();
              }
            });
            child.on("exit", (code, signal) => {
              if (code === 0 || (o.stopAtFirst && signal !== null && firstViolatingSeed !== undefined))
                resolve();
              else reject(new Error(`worker exited with ${code ?? signal}`));
            });
          }),
      ),
    );
  } finally {
    clearInterval(progress);
  }
  return { violations, firstViolatingSeed, ms: Date.now() - started };
}
