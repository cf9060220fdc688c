// What `--trace-gc` output says about a process's collector under load.

/** What a process's `--trace-gc` lines say about its garbage collector under load. */
export interface GcSummary {
  scavenges: number;
  markCompacts: number;
  /** Old generation growth between consecutive scavenges less than 1 s apart, per second. */
  promotedMBps: number;
  /** Scavenges per second over those same intervals. */
  scavengesPerS: number;
  /** Longest main-thread pause of each kind. */
  maxScavengeMs: number;
  maxMarkCompactMs: number;
}

const GC_LINE =
  /^\[\d+:(0x[0-9a-f]+)\]\s+(\d+) ms: (Scavenge|Mark-Compact)[^\d]*[\d.]+ \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB, ([\d.]+)/;

/**
 * Reads `--trace-gc` output. Only the main isolate counts (the one with the most lines; a
 * loader's worker thread prints its own). A scavenge that leaves more heap than the one before
 * promoted the difference into the old generation: under load that is what the next full
 * collection (a pause of tens of ms) must clear.
 */
export function gcSummary(text: string): GcSummary | undefined {
  const events = text
    .split("\n")
    .map((l) => GC_LINE.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({
      isolate: m[1]!,
      atMs: Number(m[2]),
      kind: m[3]!,
      afterMB: Number(m[4]),
      pauseMs: Number(m[5]),
    }));
  const perIsolate = new Map<string, number>();
  for (const e of events) perIsolate.set(e.isolate, (perIsolate.get(e.isolate) ?? 0) + 1);
  const main = [...perIsolate].sort((a, b) => b[1] - a[1])[0]?.[0];
  if (main === undefined) return undefined;
  const mine = events.filter((e) => e.isolate === main);
  let promoted = 0;
  let spanMs = 0;
  let pairs = 0;
  for (let i = 1; i < mine.length; i++) {
    const [a, b] = [mine[i - 1]!, mine[i]!];
    if (a.kind !== "Scavenge" || b.kind !== "Scavenge" || b.atMs - a.atMs >= 1000) continue;
    promoted += Math.max(0, b.afterMB - a.afterMB);
    spanMs += b.atMs - a.atMs;
    pairs++;
  }
  const pauses = (kind: string): number[] => mine.filter((e) => e.kind === kind).map((e) => e.pauseMs);
  return {
    scavenges: pauses("Scavenge").length,
    markCompacts: pauses("Mark-Compact").length,
    promotedMBps: spanMs > 0 ? (promoted * 1000) / spanMs : 0,
    scavengesPerS: spanMs > 0 ? (pairs * 1000) / spanMs : 0,
    maxScavengeMs: Math.max(0, ...pauses("Scavenge")),
    maxMarkCompactMs: Math.max(0, ...pauses("Mark-Compact")),
  };
}
