import { describe, expect, it } from "vitest";
import { infoFromMirror } from "../../src/issuing/mirror.js";

// What an edge started in a cut-off DC reads back from the DC's catalog mirror.
describe("infoFromMirror", () => {
  const fields = {
    name: "orders",
    type: "3",
    length: "0",
    starting: "1",
    step: "1",
    datacenters: "3",
    layout: "interleaved",
    ordering: "dc",
    auto_disk: "pre-checkpoint",
    max_segment_size: "1000",
  };

  it("keeps the sequence's own reserve_seconds, and leaves it unset when the mirror has none", () => {
    const own = infoFromMirror({ fields: { ...fields, reserve_seconds: "120" }, revision: 4n });
    expect(own.def).toMatchObject({ ordering: "dc", reserveSeconds: 120, limits: { maxSegmentSize: 1000n } });
    expect(infoFromMirror({ fields, revision: 4n }).def.reserveSeconds).toBeUndefined();
  });

  it("refuses a mirror the ledger would refuse (ordering dc without a reserve)", () => {
    expect(() => infoFromMirror({ fields: { ...fields, reserve_seconds: "0" }, revision: 4n })).toThrow(
      /ordering dc is served from the DC's reserve/,
    );
  });
});
