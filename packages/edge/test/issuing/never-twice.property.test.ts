// Random interleavings of everything a user, an operator or a stranger can do to a sequence, across
// two edges over one ledger state machine (the real one, in process): create, draw, delete,
// re-create with another strategy or ordering, update, a clean restart (tails returned), a kill (no
// close), and a stranger's return that guesses a grant's fence. Whatever happens, no id of a name
// is ever handed out twice. A failure prints the seed and the operations that led to it.
import { describe, expect, it } from "vitest";
import { Prng } from "@dispenser/raft";
import { AUTO_DISKS, ORDERINGS } from "@dispenser/domain";
import type { AutoDisk, Ordering } from "@dispenser/domain";
import { Dispenser } from "../../src/issuing/dispenser.js";
import { idsOf } from "../../src/issuing/sequence-issuer.js";
import { StateLedgerPort } from "../support/state-ledger-port.js";

/** Uniform in [0, 1) from the project's seeded PRNG, so a failing seed replays exactly. */
function rng(seed: number): () => number {
  const p = new Prng(seed);
  return () => p.float();
}

const NAMES = ["a", "b"];
const ORDERS = ORDERINGS.filter((o) => o !== "dc");
const STEPS = 300;

interface Run {
  readonly duplicates: string[];
  readonly log: string[];
}

async function run(seed: number): Promise<Run> {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const ledger = new StateLedgerPort();
  // Half the seeds put both edges in dc 0 (one DC's two edges), half in dcs 0 and 1.
  const dcs = seed % 2 === 0 ? [0, 0] : [0, 1];
  const edge = (i: number): Dispenser =>
    new Dispenser({ ledger, dc: dcs[i]!, drawTimeoutMs: 50, maxWaitersPerSequence: 64 });
  const edges = [edge(0), edge(1)];
  const seen = new Map<string, Set<bigint>>(NAMES.map((n) => [n, new Set()]));
  const duplicates: string[] = [];
  const log: string[] = [];

  const draw = async (i: number, name: string, n: number): Promise<void> => {
    try {
      const { drawn } = await edges[i]!.drawBatch(name, n);
      const set = seen.get(name)!;
      for (const id of idsOf(drawn)) {
        if (set.has(id)) duplicates.push(`${name}: ${id} (edge ${i})`);
        set.add(id);
      }
    } catch {
      // Not found, exhausted, shutting down, definition changed: an error issues nothing.
    }
  };

  for (let step = 0; step < STEPS && duplicates.length === 0; step++) {
    const name = pick(NAMES);
    const i = r() < 0.5 ? 0 : 1;
    const x = r();
    const pending: Promise<unknown>[] = [];
    if (x < 0.1) {
      const autoDisk: AutoDisk = pick(AUTO_DISKS);
      const ordering: Ordering = pick(ORDERS);
      log.push(`create ${name} ${autoDisk} ${ordering}`);
      try {
        ledger.create({
          name,
          type: 3,
          datacenters: 2,
          autoDisk,
          ordering,
          limits: { maxSegmentSize: 5000n },
        });
      } catch {
        // Exists already.
      }
    } else if (x < 0.6) {
      const n = 1 + Math.floor(r() * 40);
      log.push(`draw edge ${i} ${name} ${n}`);
      // Two draws at once on both edges: their leases interleave.
      pending.push(draw(i, name, n), draw(1 - i, name, 1 + Math.floor(r() * 5)));
    } else if (x < 0.68) {
      log.push(`delete ${name} via edge ${i}`);
      pending.push(edges[i]!.deleteSequence(name).catch(() => undefined));
    } else if (x < 0.76) {
      const change = r() < 0.5 ? { autoDisk: pick(AUTO_DISKS) } : { ordering: pick(ORDERS) };
      log.push(`update ${name} ${JSON.stringify(change)}`);
      try {
        ledger.update(name, change);
      } catch {
        // Refused (not found, or a change the ledger does not allow).
      }
    } else if (x < 0.84) {
      log.push(`restart edge ${i}`);
      const old = edges[i]!;
      edges[i] = edge(i);
      pending.push(old.close());
    } else if (x < 0.9) {
      log.push(`kill edge ${i}`);
      edges[i] = edge(i);
    } else {
      // A stranger returns the top-most grant's range with the fence it can read (ClusterStatus,
      // a Lease answer), hoping the ledger takes it back and grants it again.
      const dc = pick(dcs);
      const top = ledger.state.dcInfo(name, dc)?.top;
      log.push(`stranger returns ${name} dc ${dc}`);
      if (top && top.end > top.start) {
        // It has the fence but not the grant's token; it tries none and a guess.
        const fence = { term: BigInt(top.fence.term), index: BigInt(top.fence.index) };
        const returnToken = r() < 0.5 ? "" : "0123456789abcdef0123456789abcdef";
        pending.push(
          ledger
            .returnTail(
              name,
              dc,
              { start: top.start, end: top.end },
              { fence, returnToken },
              `stranger-${step}`,
            )
            .catch(() => undefined),
        );
      }
    }
    await Promise.all(pending);
  }
  await Promise.all(edges.map((e) => e.close()));
  return { duplicates, log };
}

describe("no id is issued twice, whatever is done to a sequence", () => {
  const seeds = Number(process.env["NEVER_TWICE_SEEDS"] ?? 200);
  it(`holds over ${seeds} random interleavings of two edges and a ledger`, async () => {
    const failures: string[] = [];
    for (let seed = 1; seed <= seeds; seed++) {
      const { duplicates, log } = await run(seed);
      if (duplicates.length > 0) {
        failures.push(
          `seed ${seed}: ${duplicates.length} repeated id(s), first ${duplicates[0]}; ` +
            `last operations: ${log.slice(-8).join(" | ")}`,
        );
      }
    }
    expect(failures.slice(0, 5)).toEqual([]);
  });
});
