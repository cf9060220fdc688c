/** One acknowledged draw: its id and when it was invoked and answered, on one clock. */
export interface TimedDraw {
  readonly id: bigint;
  readonly invokedAt: number;
  readonly doneAt: number;
}

/**
 * Real-time order violations: draws that got an id not above some draw that had completed before
 * they were invoked. The clock must be one clock for all draws (a logical counter, or one
 * process's monotonic time); equal times count as concurrent.
 */
export function realTimeViolations(draws: readonly TimedDraw[]): number {
  const byDone = [...draws].sort((x, y) => x.doneAt - y.doneAt);
  // prefixMax[i]: the highest id among the first i + 1 draws to complete.
  const prefixMax: bigint[] = [];
  for (const d of byDone)
    prefixMax.push(prefixMax.length === 0 || d.id > prefixMax.at(-1)! ? d.id : prefixMax.at(-1)!);
  let violations = 0;
  for (const y of draws) {
    // How many draws completed strictly before y was invoked.
    let lo = 0;
    let hi = byDone.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (byDone[mid]!.doneAt < y.invokedAt) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0 && prefixMax[lo - 1]! >= y.id) violations++;
  }
  return violations;
}
