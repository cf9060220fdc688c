// The edge's small local journal: per sequence, the counts issued and wasted, and the segments
// held, with how far each had been issued at the last checkpoint. It is not needed for uniqueness
// (a restarted edge always leases fresh ranges above every grant); it makes the counts survive a
// restart and lets a crash be accounted: on start, what the crashed process held above its last
// checkpoint is counted as waste. Ids issued between the last checkpoint and the crash are counted
// as waste rather than as issued, so generated + wasted still adds up to everything granted.
// It also keeps what the grant guard remembers of the ledger (its identity and this edge's marks),
// so a restarted edge still refuses a ledger that forgot; version 1 journals load without them.
import { mkdirSync, readFileSync, renameSync, writeFileSync, openSync, fsyncSync, closeSync } from "node:fs";
import { join } from "node:path";
import type { GuardState } from "./grant-guard.js";

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
const VERSION = 2;
/** Sequences kept in the journal; the edge holds at most as many. */
const MAX_ENTRIES = 100_000;

export class EdgeJournal {
  private readonly path: string;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, FILE);
  }

  /** What the last process wrote; empty when there is no journal yet. Throws on a corrupt file. */
  load(): { sequences: Map<string, JournalEntry>; guard: GuardState } {
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT")
        return { sequences: new Map(), guard: { identity: undefined, marks: new Map() } };
      throw e;
    }
    const raw = JSON.parse(text) as {
      version?: unknown;
      sequences?: unknown;
      ledgerIdentity?: unknown;
      marks?: unknown;
    };
    if (
      (raw.version !== 1 && raw.version !== VERSION) ||
      typeof raw.sequences !== "object" ||
      raw.sequences === null
    ) {
      throw new Error(`${this.path}: not an edge journal of version 1 or ${VERSION}`);
    }
    const marks = new Map<string, bigint>();
    if (typeof raw.marks === "object" && raw.marks !== null) {
      for (const [k, v] of Object.entries(raw.marks as Record<string, string>)) {
        marks.set(k, BigInt(v));
        if (marks.size >= MAX_ENTRIES) break;
      }
    }
    const identity = typeof raw.ledgerIdentity === "string" ? raw.ledgerIdentity : undefined;
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
    return { sequences: out, guard: { identity, marks } };
  }

  /** Replaces the journal atomically (write, fsync, rename). */
  save(entries: Iterable<[string, JournalEntry]>, guard: GuardState): void {
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
    const marks: Record<string, string> = {};
    for (const [k, v] of guard.marks) marks[k] = v.toString();
    writeFileSync(
      tmp,
      JSON.stringify({
        version: VERSION,
        sequences,
        ...(guard.identity === undefined ? {} : { ledgerIdentity: guard.identity }),
        marks,
      }),
    );
    const fd = openSync(tmp, "r+");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
  }
}
