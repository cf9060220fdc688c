import { describe, expect, it } from "vitest";
import type { SequenceDef } from "@dispenser/domain";
import { normalizeSequenceDef } from "@dispenser/domain";
import { DcReserve } from "../../src/issuing/dc-reserve.js";
import type { CarveOutcome } from "../../src/redis/pool.js";

// The DC's rate, from which the reserve is sized, is read off the pool's carve count. Carves are
// lumpy (one chunk is seconds of an edge's draws): the estimate must neither swing with them nor
// fall below the real rate.
describe("DcReserve rate", () => {
  it("a DC drawing 2,000 ids/s in lumps of 16,000 reads as 2,000 to 2,600 ids/s, steadily", async () => {
    let now = 0;
    let carved = 0;
    const reserve = new DcReserve({
      pool: {
        add: () => Promise.reject(new Error("not used")),
        carve: (_n, _dc, max): Promise<CarveOutcome> => {
          const start = BigInt(carved);
          carved += max;
          return Promise.resolve({
            kind: "carved",
            gen: "g",
            start,
            count: max,
            fence: { term: 1n, index: 1n },
            replicas: 1,
            left: 1e12, // never topped up: no ledger calls
            carved,
            skipped: 0,
          });
        },
      },
      reserveSeconds: 900,
      now: () => now,
    });
    const r = normalizeSequenceDef({ name: "r", type: 3 });
    if (!r.ok) throw new Error("bad definition");
    const def: SequenceDef = r.def;
    const grant = reserve.grantFn(
      def,
      0,
      () => Promise.reject(new Error("no ledger")),
      () => 0n,
    );
    const rates: number[] = [];
    // Two edges start at once, each carving a segment and its prefetch; then each carves 16,000
    // ids every 16 s, 5 s apart from each other: 2,000 ids/s for the DC, in lumps.
    for (let i = 0; i < 4; i++) await grant(16_000n);
    const times = [];
    for (let t = 16_000; t <= 300_000; t += 16_000) times.push(t, t + 5_000);
    for (const t of times) {
      now = t;
      await grant(16_000n);
      if (t >= 90_000) rates.push(reserve.sample("r")!.rate);
    }
    const lo = Math.min(...rates);
    const hi = Math.max(...rates);
    expect(lo).toBeGreaterThanOrEqual(2_000);
    expect(hi).toBeLessThanOrEqual(2_600);
  });
});
