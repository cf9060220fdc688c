// What a chaos run is checked against, from its history alone: every acknowledged id unique per
// sequence; order per mode (per issuer for `edge`, per DC for `dc`, the whole cluster for
// `global`: an id acknowledged before another draw was invoked is below it); a fixed-length
// sequence never leaves its range (running out is an error, never a wrap); and availability per
// DC (the share of draws answered within a second).
import { realTimeViolations } from "../support/ordering.js";

/** Where ids must only grow; "none" for sequences that promise no order (type 1). */
export type Ordering = "edge" | "dc" | "global" | "none";

/** One finished draw of the history. */
export interface Draw {
  readonly sequence: string;
  readonly ordering: Ordering;
  readonly dc: number;
  /** Who issued the id, for `edge` ordering: an edge, or an SDK client's own buffer. */
  readonly issuer: string;
  readonly invokedAt: number;
  readonly doneAt: number;
  /** The id, when the draw was acknowledged. */
  readonly id?: bigint;
  /** The error code or message, when it failed. */
  readonly error?: string;
}

export interface Verdict {
  readonly attempted: number;
  readonly acknowledged: number;
  /** Acknowledged ids that another acknowledged draw of the same sequence also got. */
  readonly duplicated: number;
  readonly orderingViolations: number;
  /** Ids outside their sequence's declared range (a wrap or an overflow). */
  readonly outOfRange: number;
  /**
   * Per DC: draws answered with an id within `answerMs`, over draws attempted (a sequence that
   * ran out answers "exhausted" as it must: those draws are left out).
   */
  readonly availability: readonly number[];
  /** Failed draws by their error. */
  readonly errors: ReadonlyMap<string, number>;
}

export function check(
  draws: readonly Draw[],
  o: {
    readonly dcs: number;
    readonly answerMs?: number;
    readonly ranges?: ReadonlyMap<string, readonly [bigint, bigint]>;
  },
): Verdict {
  const answerMs = o.answerMs ?? 1_000;
  const seen = new Map<string, Set<bigint>>();
  let acknowledged = 0;
  let duplicated = 0;
  let outOfRange = 0;
  const groups = new Map<string, { id: bigint; invokedAt: number; doneAt: number }[]>();
  const attemptedPerDc = Array.from({ length: o.dcs }, () => 0);
  const timelyPerDc = Array.from({ length: o.dcs }, () => 0);
  const errors = new Map<string, number>();
  for (const d of draws) {
    if (d.error !== "exhausted") attemptedPerDc[d.dc] = (attemptedPerDc[d.dc] ?? 0) + 1;
    if (d.id === undefined) {
      const e = d.error ?? "unknown";
      errors.set(e, (errors.get(e) ?? 0) + 1);
      continue;
    }
    acknowledged++;
    if (d.doneAt - d.invokedAt <= answerMs) timelyPerDc[d.dc] = (timelyPerDc[d.dc] ?? 0) + 1;
    let ids = seen.get(d.sequence);
    if (!ids) seen.set(d.sequence, (ids = new Set()));
    if (ids.has(d.id)) duplicated++;
    ids.add(d.id);
    const range = o.ranges?.get(d.sequence);
    if (range && (d.id < range[0] || d.id > range[1])) outOfRange++;
    if (d.ordering === "none") continue;
    const key =
      d.ordering === "global"
        ? d.sequence
        : d.ordering === "dc"
          ? `${d.sequence} dc${d.dc}`
          : `${d.sequence} ${d.issuer}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push({ id: d.id, invokedAt: d.invokedAt, doneAt: d.doneAt });
  }
  let orderingViolations = 0;
  for (const g of groups.values()) orderingViolations += realTimeViolations(g);
  return {
    attempted: draws.length,
    acknowledged,
    duplicated,
    orderingViolations,
    outOfRange,
    availability: attemptedPerDc.map((a, dc) => (a === 0 ? 1 : timelyPerDc[dc]! / a)),
    errors,
  };
}

/** The run's last line, exactly as the issue names it. */
export function summaryLine(v: Verdict): string {
  const attempted = v.attempted;
  const availability =
    attempted === 0 ? 0 : (100 * v.availability.reduce((a, b) => a + b, 0)) / v.availability.length;
  return `chaos: attempted ${attempted}, acknowledged ${v.acknowledged}, duplicated ${v.duplicated}, ordering violations ${v.orderingViolations}, availability ${availability.toFixed(1)}%`;
}
