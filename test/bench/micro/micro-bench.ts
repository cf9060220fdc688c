// Shared by the micro-benchmarks next to this file: a timed loop and its figure.

const BATCH = 10_000;

/** Runs fn over batches until millisPerCase elapsed (after a warm-up); returns ops/s. */
export function measure(fn: (i: number) => void, millisPerCase: number): number {
  for (let i = 0; i < 5 * BATCH; i++) fn(i);
  let ops = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < millisPerCase) {
    for (let i = 0; i < BATCH; i++) fn(ops + i);
    ops += BATCH;
    elapsed = performance.now() - start;
  }
  return (ops / elapsed) * 1000;
}

export const opsText = (opsPerSec: number): string => `${(opsPerSec / 1e6).toFixed(2)} M ops/s`.padStart(14);
