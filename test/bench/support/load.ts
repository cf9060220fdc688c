// A closed-loop load generator with latency percentiles, and medians of rounds.
import type { CpuWindow } from "./cpu.js";
import type { CpuSampler } from "./cpu.js";
import { sleep } from "./run.js";

export interface LoadResult {
  concurrency: number;
  /** Completions inside the measured window, per second. */
  opsPerSec: number;
  p50: number;
  p99: number;
  errors: number;
  firstError: string | undefined;
  cpu: CpuWindow | undefined;
  /** Extra findings about the window (server-side metrics), if any. */
  diag?: string;
  /** The measured window on the monotonic clock, in µs (the clock of V8 CPU profiles). */
  windowUs: [number, number];
}

/** Called when the measured window starts and ends (after the warm-up). */
export interface WindowHooks {
  sampler?: CpuSampler;
  onStart?: () => void;
  onStop?: () => void;
}

export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/**
 * Closed loop: `concurrency` workers each issue `op` back to back. Warm up for `warmupMs`, then
 * count completions and latencies (of operations that start and end inside the window) for
 * `measureMs`. CPU is sampled over the same window (hooks.sampler).
 */
export async function runLoad(
  concurrency: number,
  warmupMs: number,
  measureMs: number,
  op: (worker: number) => Promise<unknown>,
  hooks: WindowHooks = {},
): Promise<LoadResult> {
  const t0 = performance.now();
  const mStart = t0 + warmupMs;
  const mEnd = mStart + measureMs;
  const lat: number[] = [];
  let done = 0;
  let errors = 0;
  let firstError: string | undefined;
  let cpu: CpuWindow | undefined;
  let started = false;
  let stopped = false;
  const monoUs = (): number => Number(process.hrtime.bigint() / 1000n);
  const windowUs: [number, number] = [0, 0];
  const startWindow = (): void => {
    if (started) return;
    started = true;
    windowUs[0] = monoUs();
    hooks.sampler?.start();
    hooks.onStart?.();
  };
  const stopWindow = (): void => {
    if (stopped || !started) return;
    stopped = true;
    windowUs[1] = monoUs();
    cpu = hooks.sampler?.stop();
    hooks.onStop?.();
  };
  const startTimer = setTimeout(startWindow, warmupMs);
  const stopTimer = setTimeout(stopWindow, warmupMs + measureMs);
  const worker = async (w: number): Promise<void> => {
    for (;;) {
      const s = performance.now();
      if (s >= mEnd) return;
      try {
        await op(w);
      } catch (e) {
        const t = performance.now();
        if (t > mStart && t <= mEnd) errors++;
        firstError ??= e instanceof Error ? e.message : String(e);
        await sleep(5);
        continue;
      }
      const e = performance.now();
      if (e > mStart && e <= mEnd) done++;
      if (s >= mStart && e <= mEnd) lat.push(e - s);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  // The workers may all finish a moment before the timer fires: close the window here then.
  clearTimeout(startTimer);
  clearTimeout(stopTimer);
  startWindow();
  stopWindow();
  const sorted = Float64Array.from(lat).sort();
  return {
    concurrency,
    opsPerSec: done / (measureMs / 1000),
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    errors,
    firstError,
    cpu,
    windowUs,
  };
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
