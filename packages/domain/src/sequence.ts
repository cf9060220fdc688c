// The sequence definition: its fields, their defaults, and the validation that every proposer and
// every replica runs (the state machine re-validates each CreateSequence, so a bad entry in the log
// is rejected the same way on every node).
//
// Decisions:
// - Fixed-length types (1, 2) cover exactly the ids with `length` digits, 10^(length-1)..10^length-1;
//   0 is never such an id, also for length 1 (1..9), so types 1 and 2 agree on the space.
// - `length` is required for types 1 and 2 and rejected for type 3 (its ids are bounded by int64).
// - Type 1 does not use `starting`: leave it out (or give 10^(length-1)); it is stored as
//   10^(length-1), the id the permuted offset is added to. Types 1 and 2 use step 1 (others rejected).
// - Type 3 defaults to starting 1 (like Redis INCR's first value); starting 0 is allowed.
// - `prefix` layout is for type 3 only: fixed-length ids interleave so they keep their length.
// - Every DC must get at least one id, so an unusable datacenter count is rejected up front.

import {
  DEFAULT_MAX_SEGMENT_SIZE,
  MAX_DATACENTERS,
  MAX_LENGTH,
  MAX_RESERVE_SECONDS,
  MAX_SEGMENT_SIZE,
  SEQUENCE_NAME_PATTERN,
  SEQUENCE_NAME_RULE,
} from "./limits.js";
import { dcPrefixBits, INT64_MAX, pow10, prefixShift } from "./space.js";

export type SequenceType = 1 | 2 | 3;
export const LAYOUTS = ["interleaved", "prefix"] as const;
export type Layout = (typeof LAYOUTS)[number];
export const ORDERINGS = ["edge", "dc", "global"] as const;
export type Ordering = (typeof ORDERINGS)[number];
export const AUTO_DISKS = ["memory", "pre-base", "pre-checkpoint", "elegant_close", "pre_close"] as const;
export type AutoDisk = (typeof AUTO_DISKS)[number];

export interface SequenceLimits {
  /** The largest LeaseSegment size accepted, in counter values. */
  readonly maxSegmentSize: bigint;
}

/** A complete, validated definition, as stored in the catalog and carried by CreateSequence. */
export interface SequenceDef {
  readonly name: string;
  readonly type: SequenceType;
  /** Digits of every id; types 1 and 2 only. */
  readonly length?: number;
  readonly starting: bigint;
  readonly step: bigint;
  readonly datacenters: number;
  readonly layout: Layout;
  readonly ordering: Ordering;
  readonly autoDisk: AutoDisk;
  readonly limits: SequenceLimits;
  /**
   * Type 1: the fingerprint of the permutation secret its ids are mapped with, bound when the
   * sequence is created through an edge or by its first lease, and kept across delete and re-create.
   */
  readonly keyFingerprint?: string;
  /**
   * Seconds of its DC's draw rate each DC's reserve pool holds for this sequence; 0: no reserve.
   * Unset: each edge's own setting.
   */
  readonly reserveSeconds?: number;
}

/** What a user asks for: everything but name and type may be left to its default. */
export interface SequenceSpec {
  readonly name: string;
  readonly type: number;
  readonly length?: number;
  readonly starting?: bigint;
  readonly step?: bigint;
  readonly datacenters?: number;
  readonly layout?: string;
  readonly ordering?: string;
  readonly autoDisk?: string;
  readonly limits?: { readonly maxSegmentSize?: bigint };
  readonly keyFingerprint?: string;
  readonly reserveSeconds?: number;
}

/** The fields UpdateSequence may change: none of them moves an id. */
export interface SequenceChanges {
  readonly autoDisk?: AutoDisk;
  readonly ordering?: Ordering;
  readonly limits?: SequenceLimits;
  readonly reserveSeconds?: number;
}

/** The fields that fix where ids land; a re-created name must keep them. */
export const IDENTITY_FIELDS = [
  "type",
  "length",
  "starting",
  "step",
  "datacenters",
  "layout",
  "keyFingerprint",
] as const;

export interface FieldError {
  readonly field: string;
  readonly reason: string;
}

export type DefResult =
  | { readonly ok: true; readonly def: SequenceDef }
  | { readonly ok: false; readonly errors: readonly FieldError[] };

export function describeErrors(errors: readonly FieldError[]): string {
  return errors.map((e) => e.reason).join("; ");
}

const isIn = <T extends string>(xs: readonly T[], v: unknown): v is T => xs.includes(v as T);
const isType = (v: unknown): v is SequenceType => v === 1 || v === 2 || v === 3;

/** Fills in defaults, then validates. */
export function normalizeSequenceDef(spec: SequenceSpec): DefResult {
  // Fixed-length types start at the smallest id of their length; type 3 at 1.
  const len = spec.length;
  const fixed = spec.type === 1 || spec.type === 2;
  const lengthOk = len !== undefined && Number.isInteger(len) && len >= 1 && len <= MAX_LENGTH;
  const defaultStart = fixed && lengthOk ? pow10(len - 1) : 1n;
  const def = {
    name: spec.name,
    type: spec.type as SequenceType,
    ...(spec.length === undefined ? {} : { length: spec.length }),
    starting: spec.starting ?? defaultStart,
    step: spec.step ?? 1n,
    datacenters: spec.datacenters ?? 1,
    layout: (spec.layout ?? "interleaved") as Layout,
    ordering: (spec.ordering ?? "edge") as Ordering,
    autoDisk: (spec.autoDisk ?? "pre-checkpoint") as AutoDisk,
    limits: { maxSegmentSize: spec.limits?.maxSegmentSize ?? DEFAULT_MAX_SEGMENT_SIZE },
    ...(spec.keyFingerprint === undefined ? {} : { keyFingerprint: spec.keyFingerprint }),
    ...(spec.reserveSeconds === undefined ? {} : { reserveSeconds: spec.reserveSeconds }),
  };
  const errors = validateSequenceDef(def);
  return errors.length === 0 ? { ok: true, def } : { ok: false, errors };
}

export function validateName(name: unknown): FieldError | undefined {
  return typeof name === "string" && SEQUENCE_NAME_PATTERN.test(name)
    ? undefined
    : { field: "name", reason: `name must be ${SEQUENCE_NAME_RULE}` };
}

export function validateChanges(changes: SequenceChanges): FieldError[] {
  const errors: FieldError[] = [];
  const { autoDisk, ordering, limits, reserveSeconds } = changes;
  if (
    autoDisk === undefined &&
    ordering === undefined &&
    limits === undefined &&
    reserveSeconds === undefined
  ) {
    errors.push({
      field: "changes",
      reason: "changes must set at least one of autoDisk, ordering, limits, reserveSeconds",
    });
  }
  if (autoDisk !== undefined && !isIn(AUTO_DISKS, autoDisk)) {
    errors.push({ field: "autoDisk", reason: `autoDisk must be one of ${AUTO_DISKS.join(", ")}` });
  }
  if (ordering !== undefined && !isIn(ORDERINGS, ordering)) {
    errors.push({ field: "ordering", reason: `ordering must be one of ${ORDERINGS.join(", ")}` });
  }
  if (limits !== undefined) errors.push(...validateLimits(limits));
  if (reserveSeconds !== undefined) errors.push(...validateReserve(reserveSeconds));
  return errors;
}

function validateReserve(s: number): FieldError[] {
  return Number.isInteger(s) && s >= 0 && s <= MAX_RESERVE_SECONDS
    ? []
    : [
        {
          field: "reserveSeconds",
          reason: `reserveSeconds must be between 0 (no reserve) and ${MAX_RESERVE_SECONDS}`,
        },
      ];
}

function validateLimits(limits: SequenceLimits): FieldError[] {
  const m = limits.maxSegmentSize;
  return typeof m === "bigint" && m >= 1n && m <= MAX_SEGMENT_SIZE
    ? []
    : [
        {
          field: "limits.maxSegmentSize",
          reason: `limits.maxSegmentSize must be between 1 and ${MAX_SEGMENT_SIZE}`,
        },
      ];
}

/** Checks a complete definition; no defaults are applied. Empty when valid. */
export function validateSequenceDef(def: SequenceDef): FieldError[] {
  const errors: FieldError[] = [];
  const bad = (field: string, reason: string): void => void errors.push({ field, reason });
  const nameError = validateName(def.name);
  if (nameError) errors.push(nameError);

  const typeOk = isType(def.type);
  if (!typeOk)
    bad(
      "type",
      "type must be 1 (fixed-length random), 2 (fixed-length increasing) or 3 (increasing with step)",
    );
  const fixed = def.type === 1 || def.type === 2;

  let lengthOk = false;
  if (fixed) {
    if (def.length === undefined) bad("length", `length is required for type ${def.type}`);
    else if (!Number.isInteger(def.length) || def.length < 1 || def.length > MAX_LENGTH) {
      bad("length", `length must be between 1 and ${MAX_LENGTH}`);
    } else lengthOk = true;
  } else if (def.type === 3 && def.length !== undefined) {
    bad("length", "length is not used by type 3 (its ids are bounded by int64); leave it out");
  }

  let stepOk = false;
  if (typeof def.step !== "bigint" || def.step <= 0n) bad("step", "step must be > 0");
  else if (def.step > INT64_MAX) bad("step", "step must be below 2^63");
  else if (fixed && def.step !== 1n)
    bad("step", `step must be 1 for type ${def.type} (fixed-length ids advance by one)`);
  else stepOk = true;

  const d = def.datacenters;
  const dcOk = Number.isInteger(d) && d >= 1 && d <= MAX_DATACENTERS;
  if (!dcOk) bad("datacenters", `datacenters must be between 1 and ${MAX_DATACENTERS}`);

  let layoutOk = false;
  if (!isIn(LAYOUTS, def.layout)) bad("layout", `layout must be one of ${LAYOUTS.join(", ")}`);
  else if (fixed && def.layout === "prefix") {
    bad(
      "layout",
      "layout prefix is only for type 3 (64-bit ids); fixed-length types interleave to keep their length",
    );
  } else layoutOk = true;

  if (!isIn(ORDERINGS, def.ordering)) bad("ordering", `ordering must be one of ${ORDERINGS.join(", ")}`);
  if (!isIn(AUTO_DISKS, def.autoDisk)) bad("autoDisk", `autoDisk must be one of ${AUTO_DISKS.join(", ")}`);
  if (typeof def.limits !== "object" || def.limits === null) bad("limits", "limits must be an object");
  else errors.push(...validateLimits(def.limits));
  if (def.keyFingerprint !== undefined) {
    if (def.type !== 1) bad("keyFingerprint", "keyFingerprint is only for type 1 (keyed permutation)");
    else if (typeof def.keyFingerprint !== "string" || !/^[0-9a-f]{16}$/.test(def.keyFingerprint))
      bad("keyFingerprint", "keyFingerprint must be 16 hex digits");
  }
  if (def.reserveSeconds !== undefined) {
    errors.push(...validateReserve(def.reserveSeconds));
    if (def.reserveSeconds === 0 && def.ordering === "dc")
      bad(
        "reserveSeconds",
        "ordering dc is served from the DC's reserve: reserveSeconds 0 would turn it off",
      );
  }

  const s = def.starting;
  if (typeof s !== "bigint" || s < 0n) {
    bad("starting", "starting must be >= 0");
    return errors;
  }
  if (!typeOk || !stepOk || !dcOk || !layoutOk || (fixed && !lengthOk)) return errors;
  if (fixed) checkFixedSpace(def, def.length!, bad);
  else checkInt64Space(def, bad);
  return errors;
}

function checkFixedSpace(
  def: SequenceDef,
  length: number,
  bad: (field: string, reason: string) => void,
): void {
  const lo = pow10(length - 1);
  const hi = pow10(length) - 1n;
  const d = BigInt(def.datacenters);
  if (def.type === 1) {
    if (def.starting !== lo) {
      bad(
        "starting",
        `starting is not used by type 1: leave it out (it is ${lo}, the smallest ${length}-digit id)`,
      );
    } else if (d > hi - lo + 1n) {
      bad("datacenters", `datacenters ${def.datacenters} exceed the ${hi - lo + 1n} ids of ${length} digits`);
    }
    return;
  }
  if (def.starting < lo || def.starting > hi) {
    bad("starting", `starting ${def.starting} is outside the ${length}-digit range ${lo}..${hi}`);
  } else if (d > hi - def.starting + 1n) {
    bad(
      "datacenters",
      `datacenters ${def.datacenters} exceed the ${hi - def.starting + 1n} ids from ${def.starting} to ${hi}: every datacenter needs at least one id`,
    );
  }
}

function checkInt64Space(def: SequenceDef, bad: (field: string, reason: string) => void): void {
  if (def.layout === "prefix") {
    const shift = prefixShift(def.datacenters);
    if (def.starting >= 1n << shift) {
      bad(
        "starting",
        `starting ${def.starting} must be below 2^${shift} so the ${dcPrefixBits(def.datacenters)}-bit DC prefix of ${def.datacenters} datacenters stays intact`,
      );
    }
    return;
  }
  if (def.starting > INT64_MAX) bad("starting", "starting must be below 2^63 (ids are int64)");
  else if (def.starting + def.step * BigInt(def.datacenters - 1) > INT64_MAX) {
    bad(
      "datacenters",
      `the first id of dc ${def.datacenters - 1} (starting + step*${def.datacenters - 1}) would not fit in int64`,
    );
  }
}

/** The identity fields in which `next` differs from `prev`, as "field a → b" notes. */
export function identityDiff(prev: SequenceDef, next: SequenceDef): string[] {
  const out: string[] = [];
  for (const f of IDENTITY_FIELDS) {
    const a = prev[f];
    const b = next[f];
    if (a !== b) out.push(`${f} ${a ?? "(none)"} → ${b ?? "(none)"}`);
  }
  return out;
}
