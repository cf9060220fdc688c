// The sequence definition on the wire: the protobuf enums against the model's names, both ways,
// and the definition message against the model's SequenceDef. One table per enum, used by the
// ledger's service, the edge (RESP and its DC mirror), the CLI and the SDK.
import type { SequenceDefinition } from "@dispenser/proto";
import { AutoDisk as PbAutoDisk, Layout as PbLayout, Ordering as PbOrdering } from "@dispenser/proto";
import type { AutoDisk, Layout, Ordering, SequenceDef } from "./sequence.js";

export const LAYOUT_TO_PB: Readonly<Record<Layout, PbLayout>> = {
  interleaved: PbLayout.LAYOUT_INTERLEAVED,
  prefix: PbLayout.LAYOUT_PREFIX,
};
export const ORDERING_TO_PB: Readonly<Record<Ordering, PbOrdering>> = {
  edge: PbOrdering.ORDERING_EDGE,
  dc: PbOrdering.ORDERING_DC,
  global: PbOrdering.ORDERING_GLOBAL,
};
export const AUTO_DISK_TO_PB: Readonly<Record<AutoDisk, PbAutoDisk>> = {
  memory: PbAutoDisk.AUTO_DISK_MEMORY,
  "pre-base": PbAutoDisk.AUTO_DISK_PRE_BASE,
  "pre-checkpoint": PbAutoDisk.AUTO_DISK_PRE_CHECKPOINT,
  elegant_close: PbAutoDisk.AUTO_DISK_ELEGANT_CLOSE,
  pre_close: PbAutoDisk.AUTO_DISK_PRE_CLOSE,
};

const invert = <K extends string, V extends number>(r: Readonly<Record<K, V>>): ReadonlyMap<V, K> =>
  new Map(Object.entries(r).map(([k, v]) => [v as V, k as K]));
export const LAYOUT_FROM_PB = invert(LAYOUT_TO_PB);
export const ORDERING_FROM_PB = invert(ORDERING_TO_PB);
export const AUTO_DISK_FROM_PB = invert(AUTO_DISK_TO_PB);

/** A definition as the ledger answers it: the model's fields plus the catalog's revision and creation time. */
export function toPbSequence(
  d: SequenceDef,
  catalog: { readonly revision: bigint; readonly createdAtMs: number },
): SequenceDefinition {
  return {
    name: d.name,
    type: d.type,
    ...(d.length === undefined ? {} : { length: d.length }),
    starting: d.starting,
    step: d.step,
    datacenters: d.datacenters,
    layout: LAYOUT_TO_PB[d.layout],
    ordering: ORDERING_TO_PB[d.ordering],
    autoDisk: AUTO_DISK_TO_PB[d.autoDisk],
    limits: { maxSegmentSize: d.limits.maxSegmentSize },
    revision: catalog.revision,
    createdAtMs: BigInt(catalog.createdAtMs),
    keyFingerprint: d.keyFingerprint ?? "",
    ...(d.reserveSeconds === undefined ? {} : { reserveSeconds: d.reserveSeconds }),
  };
}

/** The definition a ledger answer carries, back in the model's terms (the edge's view). */
export function fromPbSequence(pb: SequenceDefinition): SequenceDef {
  const layout = LAYOUT_FROM_PB.get(pb.layout);
  const ordering = ORDERING_FROM_PB.get(pb.ordering);
  const autoDisk = AUTO_DISK_FROM_PB.get(pb.autoDisk);
  const type = Number(pb.type);
  if (!layout || !ordering || !autoDisk || (type !== 1 && type !== 2 && type !== 3)) {
    throw new Error(`sequence "${pb.name}" carries an unknown type, layout, ordering or auto_disk`);
  }
  return {
    name: pb.name,
    type,
    ...(pb.length === undefined ? {} : { length: pb.length }),
    starting: pb.starting ?? 0n,
    step: pb.step ?? 0n,
    datacenters: pb.datacenters ?? 0,
    layout,
    ordering,
    autoDisk,
    limits: { maxSegmentSize: pb.limits?.maxSegmentSize ?? 0n },
    ...(pb.keyFingerprint ? { keyFingerprint: pb.keyFingerprint } : {}),
    ...(pb.reserveSeconds === undefined ? {} : { reserveSeconds: pb.reserveSeconds }),
  };
}
