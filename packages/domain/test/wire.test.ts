import { AutoDisk, Layout, Ordering, SequenceDefinition } from "@dispenser/proto";
import { describe, expect, it } from "vitest";
import type { SequenceSpec } from "../src/index.js";
import {
  UnknownValueError,
  changesFromPb,
  changesToPb,
  fromPbSequence,
  normalizeSequenceDef,
  specFromPb,
  specToPb,
  toPbSequence,
} from "../src/index.js";

// The definition on the wire: what a caller leaves unset stays unset (the ledger fills defaults),
// what it gives is kept as given, and a value outside the model is an error naming its field.
describe("the definition on the wire", () => {
  it("keeps given fields (0 included) and leaves unset ones unset, both ways", () => {
    const spec: SequenceSpec = {
      name: "a",
      type: 2,
      length: 6,
      starting: 0n,
      layout: "prefix",
      ordering: "dc",
    };
    const pb = specToPb(spec);
    expect(pb.starting).toBe(0n);
    expect(pb.step).toBeUndefined();
    expect(pb.autoDisk).toBe(AutoDisk.AUTO_DISK_UNSPECIFIED);
    expect(specFromPb(pb)).toEqual(spec);
    expect(specFromPb(SequenceDefinition.fromPartial({ name: "b", type: 3 }))).toEqual({
      name: "b",
      type: 3,
    });
  });

  it("round-trips a complete definition through the ledger's answer", () => {
    const r = normalizeSequenceDef({
      name: "c",
      type: 2,
      length: 9,
      datacenters: 3,
      ordering: "dc",
      reserveSeconds: 60,
    });
    if (!r.ok) throw new Error(`valid definition refused: ${JSON.stringify(r.errors)}`);
    const pb = toPbSequence(r.def, { revision: 7n, createdAtMs: 5 });
    expect(fromPbSequence(pb)).toEqual(r.def);
    expect(normalizeSequenceDef(specFromPb(pb))).toEqual(r);
  });

  it("refuses enum numbers and names outside the model, naming the field", () => {
    const bad = SequenceDefinition.fromPartial({ name: "d", type: 3, ordering: 9 as Ordering });
    expect(() => specFromPb(bad)).toThrow(new UnknownValueError("ordering", 9));
    expect(() => specToPb({ name: "d", type: 3, layout: "zigzag" })).toThrow(
      'layout "zigzag" is not a known value',
    );
    expect(() => specToPb({ name: "d", type: 3, autoDisk: "constructor" })).toThrow(UnknownValueError);
    expect(() => changesFromPb({ autoDisk: 77 as AutoDisk })).toThrow("auto_disk 77 is not a known value");
  });

  it("carries the changes of an update both ways", () => {
    const changes = { ordering: "global", limits: { maxSegmentSize: 10n }, reserveSeconds: 0 } as const;
    const req = changesToPb("e", changes, 3n);
    expect(req).toMatchObject({ name: "e", expectedRevision: 3n, ordering: Ordering.ORDERING_GLOBAL });
    expect(req.autoDisk).toBeUndefined();
    expect(changesFromPb(req)).toEqual(changes);
    expect(changesFromPb({ layout: Layout.LAYOUT_PREFIX } as never)).toEqual({});
  });
});
