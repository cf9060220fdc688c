import { describe, expect, it } from "vitest";
import { MUTATIONS, loadMutant } from "../src/mutations.js";
import { Simulation } from "../src/simulation.js";

describe("simulation", () => {
  it("replays a seed exactly", () => {
    const a = new Simulation({ seed: 7 }).run();
    const b = new Simulation({ seed: 7 }).run();
    expect(a.stats).toEqual(b.stats);
    expect(a.stats.events).toBeGreaterThan(1000);
  });

  it("exercises what it claims to: acks, reads, crashes, elections, conf changes", () => {
    const totals = {
      acks: 0,
      reads: 0,
      crashes: 0,
      leaders: 0,
      confChanges: 0,
      three: 0,
      five: 0,
      ledger: 0,
    };
    for (let seed = 1; seed <= 30; seed++) {
      const r = new Simulation({ seed }).run();
      expect(r.violations).toEqual([]);
      totals.acks += r.stats.acks;
      totals.reads += r.stats.reads;
      totals.crashes += r.stats.crashes;
      totals.leaders += r.stats.leaders;
      totals.confChanges += r.stats.confChanges;
      if (r.stats.app === "ledger") totals.ledger++;
      if (r.stats.clusterSize === 3) totals.three++;
      else totals.five++;
    }
    expect(totals.acks).toBeGreaterThan(1000);
    expect(totals.reads).toBeGreaterThan(30);
    expect(totals.crashes).toBeGreaterThan(30);
    expect(totals.leaders).toBeGreaterThan(60);
    expect(totals.confChanges).toBeGreaterThan(30);
    expect(totals.three).toBeGreaterThan(0);
    expect(totals.ledger).toBeGreaterThan(5); // The segment ledger's own state machine runs too.
    expect(totals.five).toBeGreaterThan(0);
  });
});

// Every deliberately broken rule of the core and of its Ready loop must be caught, each within a bounded number of seeds.
describe("mutations of the Raft core are caught", () => {
  for (const m of MUTATIONS) {
    const seedsMax = m.seedsMax;
    if (seedsMax === undefined) continue; // Guarded by the unit test named in `guardedBy`.
    it(`${m.name} (${m.breaks})`, async () => {
      const raft = await loadMutant(m.name);
      let caughtAt = 0;
      for (let seed = 1; seed <= seedsMax && caughtAt === 0; seed++) {
        if (new Simulation({ seed, raft }).run().violations.length > 0) caughtAt = seed;
      }
      expect(caughtAt, `not caught within ${seedsMax} seeds`).toBeGreaterThan(0);
    }, 300_000);
  }
});
