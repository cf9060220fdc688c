// The edge's small local journal: per sequence, the counts issued and wasted, and the segments
// held, with how far each had been issued at the last checkpoint. It is not needed for uniqueness
// (a restarted edge always leases fresh ranges above every grant); it makes the counts survive a
// restart and lets a crash be accounted: on start, what the crashed process held above its last
// checkpoint is counted as waste. Ids issued between the last checkpoint and the crash are counted
// as waste rather than as issued, so generated + wasted still adds up to everything granted.
import { mkdirSync, readFileSync, renameSync, writeFileSync, openSync, fsyncSync, closeSync } from "node:fs";
import { join } from "node:path";

export interface JournalSegment {
  readonly start: bigint;
  readonly end: bigint;
  /** Issued below this counter value at the checkpoint. */
  readonly next: bigint;
}

export interface JournalEntry {
  readonly dc: number;
  readonly generated: bigint;
  readonly wasted: bigint;
  readonly held: readonly JournalSegment[];
}

const FILE = "edge-journal.json";
const VERSION = 1;
/** Sequences kept in the journal; the edge holds at most as many. */
const MAX_ENTRIES = 100_000;

export class EdgeJournal {
  private readonly path: string;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, FILE);
  }

  /** What the last process wrote; empty when there is no journal yet. Throws on a corrupt file. */
  load(): Map<string, JournalEntry> {
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return new Map();
      throw e;
    }
    const raw = JSON.parse(text) as { version?: unknown; sequences?: unknown };
    if (raw.version !== VERSION || typeof raw.sequences !== "object" || raw.sequences === null) {
      throw new Error(`${this.path}: not an edge journal of version ${VERSION}`);
    }
    const out = new Map<string, JournalEntry>();
    for (const [name, v] of Object.entries(raw.sequences as Record<string, unknown>)) {
      const e = v as { dc: number; generated: string; wasted: string; held: [string, string, string][] };
      out.set(name, {
        dc: e.dc,
        generated: BigInt(e.generated),
        wasted: BigInt(e.wasted),
        held: e.held.map(([s, en, n]) => ({ start: BigInt(s), end: BigInt(en), next: BigInt(n) })),
      });
      if (out.size >= MAX_ENTRIES) break;
    }
    return out;
  }

  /** Replaces the journal atomically (write, fsync, rename). */
  save(entries: Iterable<[string, JournalEntry]>): void {
    const sequences: Record<string, unknown> = {};
    for (const [name, e] of entries) {
      sequences[name] = {
        dc: e.dc,
        generated: e.generated.toString(),
        wasted: e.wasted.toString(),
        held: e.held.map((s) => [s.start.toString(), s.end.toString(), s.next.toString()]),
      };
    }
    const tmp = `${this.path}.tmp`;
    writeFileSync(tmp, JSON.stringify({ version: VERSION, sequences }));
    const fd = openSync(tmp, "r+");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
  }
}
