// The sequence definition on the wire: the protobuf enums against the model's names, both ways,
// and the definition message against the model's SequenceDef. One table per enum, used by the
// ledger's service, the edge (RESP and its DC mirror), the CLI and the SDK.
import type { SequenceDefinition, UpdateSequenceRequest } from "@dispenser/proto";
import { AutoDisk as PbAutoDisk, Layout as PbLayout, Ordering as PbOrdering } from "@dispenser/proto";
import type { AutoDisk, Layout, Ordering, SequenceChanges, SequenceDef, SequenceSpec } from "./sequence.js";

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

/** A value on the wire outside the model: an enum number it does not know, or an unknown name. */
export class UnknownValueError extends Error {
  constructor(
    readonly field: string,
    value: number | string,
  ) {
    super(`${field} ${typeof value === "string" ? JSON.stringify(value) : value} is not a known value`);
  }
}

/** Run a conversion whose unknown values are the caller's error, as `toError` makes it. */
export function onUnknownValue<T>(f: () => T, toError: (e: UnknownValueError) => Error): T {
  try {
    return f();
  } catch (e) {
    throw e instanceof UnknownValueError ? toError(e) : e;
  }
}

/** An enum off the wire: 0 (unspecified) is "not given", a number the model lacks is an error. */
function fromPbEnum<K>(m: ReadonlyMap<number, K>, v: number, field: string): K | undefined {
  if (v === 0) return undefined;
  const k = m.get(v);
  if (k === undefined) throw new UnknownValueError(field, v);
  return k;
}

function toPbEnum<V>(table: Readonly<Record<string, V>>, name: string | undefined, field: string): V | 0 {
  if (name === undefined) return 0;
  // Own keys only: "constructor" or "__proto__" must not find Object's.
  if (!Object.hasOwn(table, name)) throw new UnknownValueError(field, name);
  return table[name]!;
}

/**
 * What a CreateSequence asks for, in the model's terms. A field given is kept as given (0
 * included: validation says what is wrong with it); only a field left unset takes its default.
 */
export function specFromPb(seq: SequenceDefinition): SequenceSpec {
  const layout = fromPbEnum(LAYOUT_FROM_PB, seq.layout, "layout");
  const ordering = fromPbEnum(ORDERING_FROM_PB, seq.ordering, "ordering");
  const autoDisk = fromPbEnum(AUTO_DISK_FROM_PB, seq.autoDisk, "auto_disk");
  return {
    name: seq.name,
    type: seq.type,
    ...(seq.length !== undefined ? { length: seq.length } : {}),
    ...(seq.starting !== undefined ? { starting: seq.starting } : {}),
    ...(seq.step !== undefined ? { step: seq.step } : {}),
    ...(seq.datacenters !== undefined ? { datacenters: seq.datacenters } : {}),
    ...(layout ? { layout } : {}),
    ...(ordering ? { ordering } : {}),
    ...(autoDisk ? { autoDisk } : {}),
    ...(seq.limits ? { limits: { maxSegmentSize: seq.limits.maxSegmentSize } } : {}),
    ...(seq.keyFingerprint ? { keyFingerprint: seq.keyFingerprint } : {}),
    ...(seq.reserveSeconds !== undefined ? { reserveSeconds: seq.reserveSeconds } : {}),
  };
}

/** A spec as a CreateSequence carries it: fields left unset stay unset for the ledger to fill. */
export function specToPb(spec: SequenceSpec): SequenceDefinition {
  return {
    name: spec.name,
    type: spec.type,
    ...(spec.length !== undefined ? { length: spec.length } : {}),
    ...(spec.starting !== undefined ? { starting: spec.starting } : {}),
    ...(spec.step !== undefined ? { step: spec.step } : {}),
    ...(spec.datacenters !== undefined ? { datacenters: spec.datacenters } : {}),
    layout: toPbEnum(LAYOUT_TO_PB, spec.layout, "layout"),
    ordering: toPbEnum(ORDERING_TO_PB, spec.ordering, "ordering"),
    autoDisk: toPbEnum(AUTO_DISK_TO_PB, spec.autoDisk, "auto_disk"),
    ...(spec.limits?.maxSegmentSize !== undefined
      ? { limits: { maxSegmentSize: spec.limits.maxSegmentSize } }
      : {}),
    revision: 0n,
    createdAtMs: 0n,
    keyFingerprint: spec.keyFingerprint ?? "",
    ...(spec.reserveSeconds !== undefined ? { reserveSeconds: spec.reserveSeconds } : {}),
  };
}

/** An UpdateSequence's changes in the model's terms. */
export function changesFromPb(
  req: Omit<UpdateSequenceRequest, "name" | "expectedRevision">,
): SequenceChanges {
  const autoDisk =
    req.autoDisk === undefined ? undefined : fromPbEnum(AUTO_DISK_FROM_PB, req.autoDisk, "auto_disk");
  const ordering =
    req.ordering === undefined ? undefined : fromPbEnum(ORDERING_FROM_PB, req.ordering, "ordering");
  return {
    ...(autoDisk ? { autoDisk } : {}),
    ...(ordering ? { ordering } : {}),
    ...(req.limits ? { limits: { maxSegmentSize: req.limits.maxSegmentSize } } : {}),
    ...(req.reserveSeconds !== undefined ? { reserveSeconds: req.reserveSeconds } : {}),
  };
}

/** Changes as an UpdateSequence carries them. */
export function changesToPb(
  name: string,
  changes: SequenceChanges,
  expectedRevision: bigint,
): UpdateSequenceRequest {
  return {
    name,
    expectedRevision,
    ...(changes.autoDisk !== undefined ? { autoDisk: AUTO_DISK_TO_PB[changes.autoDisk] } : {}),
    ...(changes.ordering !== undefined ? { ordering: ORDERING_TO_PB[changes.ordering] } : {}),
    ...(changes.limits ? { limits: { maxSegmentSize: changes.limits.maxSegmentSize } } : {}),
    ...(changes.reserveSeconds !== undefined ? { reserveSeconds: changes.reserveSeconds } : {}),
  };
}
