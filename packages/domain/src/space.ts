// Id math shared by the ledger and the edge: where datacenter `dc`'s counter value `c` lands in a
// sequence's id space, how many counter values each DC has, and the way back from an id.
//
// Layouts (D = datacenters):
// - interleaved (all types): slot k = c*D + dc. Types 2 and 3: id = starting + step*k, so ids keep
//   their length and k mod D is the DC. Type 1: the edge maps k through its keyed permutation of
//   [0, slotSpace) and adds 10^(length-1); this module only knows the slots.
// - prefix (type 3 only): with b = bit length of D-1 (0 when D = 1) and S = 63 - b,
//   id = dc * 2^S + starting + step*c, with starting + step*c < 2^S. The DC sits in the top b bits
//   of a 63-bit id; every DC gets the same capacity.
// Every id is below 2^63, so it fits a signed int64 (and a uint64).

import type { SequenceDef } from "./sequence.js";

export const INT64_MAX = (1n << 63n) - 1n;

export type ParseResult =
  | { readonly ok: true; readonly dc: number; readonly counter: bigint }
  | { readonly ok: false; readonly reason: string };

export function pow10(n: number): bigint {
  return 10n ** BigInt(n);
}

/** Bits the prefix layout spends on the DC: the bit length of D-1. */
export function dcPrefixBits(datacenters: number): number {
  return datacenters <= 1 ? 0 : (datacenters - 1).toString(2).length;
}

/** S in the prefix formula: a DC's ids are dc*2^S + [0, 2^S). */
export function prefixShift(datacenters: number): bigint {
  return BigInt(63 - dcPrefixBits(datacenters));
}

function digits(def: SequenceDef): number {
  if (def.length === undefined)
    throw new RangeError(`sequence "${def.name}" of type ${def.type} has no length`);
  return def.length;
}

function checkDc(def: SequenceDef, dc: number): void {
  if (!Number.isInteger(dc) || dc < 0 || dc >= def.datacenters) {
    throw new RangeError(`dc ${dc} is outside 0..${def.datacenters - 1} for sequence "${def.name}"`);
  }
}

/** Type 1: the number of slots, 9*10^(length-1) (all ids with exactly `length` digits). */
export function slotSpace(def: SequenceDef): bigint {
  if (def.type !== 1)
    throw new RangeError(`slotSpace is for type 1 sequences; "${def.name}" is type ${def.type}`);
  return 9n * pow10(digits(def) - 1);
}

/** Type 1: the slot the edge permutes for counter value c of datacenter dc. */
export function slotOf(def: SequenceDef, dc: number, c: bigint): bigint {
  checkDc(def, dc);
  if (c < 0n || c >= capacity(def, dc)) {
    throw new RangeError(`counter ${c} is outside the capacity of dc ${dc} of "${def.name}"`);
  }
  return c * BigInt(def.datacenters) + BigInt(dc);
}

/** Type 1: the way back from a slot (the edge inverts its permutation first). */
export function parseSlot(def: SequenceDef, slot: bigint): ParseResult {
  if (def.type !== 1) return { ok: false, reason: `"${def.name}" is type ${def.type}, not type 1` };
  if (slot < 0n || slot >= slotSpace(def)) {
    return { ok: false, reason: `slot ${slot} is outside 0..${slotSpace(def) - 1n}` };
  }
  const d = BigInt(def.datacenters);
  return { ok: true, dc: Number(slot % d), counter: slot / d };
}

/** Types 2 and 3: the first id of datacenter dc (counter 0). */
export function idBase(def: SequenceDef, dc: number): bigint {
  checkDc(def, dc);
  if (def.type === 1) throw new RangeError(`type 1 ids come from the edge's permutation of slotOf()`);
  if (def.layout === "prefix") return (BigInt(dc) << prefixShift(def.datacenters)) + def.starting;
  return def.starting + def.step * BigInt(dc);
}

/** Types 2 and 3: the distance between consecutive ids of one DC. */
export function idStride(def: SequenceDef): bigint {
  if (def.type === 1) throw new RangeError(`type 1 ids come from the edge's permutation of slotOf()`);
  return def.layout === "prefix" ? def.step : def.step * BigInt(def.datacenters);
}

/** The largest id datacenter dc may ever hold. */
function topOf(def: SequenceDef, dc: number): bigint {
  if (def.type !== 3) return pow10(digits(def)) - 1n;
  if (def.layout === "interleaved") return INT64_MAX;
  const s = prefixShift(def.datacenters);
  return (BigInt(dc) << s) + (1n << s) - 1n;
}

/** How many counter values datacenter dc can ever get: counters 0..capacity-1 are valid. */
export function capacity(def: SequenceDef, dc: number): bigint {
  checkDc(def, dc);
  if (def.type === 1) {
    const space = slotSpace(def);
    const d = BigInt(dc);
    return d < space ? (space - 1n - d) / BigInt(def.datacenters) + 1n : 0n;
  }
  const base = idBase(def, dc);
  const top = topOf(def, dc);
  return base > top ? 0n : (top - base) / idStride(def) + 1n;
}

/** Types 2 and 3: the id of counter value c of datacenter dc. */
export function idOf(def: SequenceDef, dc: number, c: bigint): bigint {
  const base = idBase(def, dc);
  if (c < 0n || c >= capacity(def, dc)) {
    throw new RangeError(`counter ${c} is outside the capacity of dc ${dc} of "${def.name}"`);
  }
  return base + idStride(def) * c;
}

/** Types 2 and 3: which DC issued an id, and at which counter value. */
export function parse(def: SequenceDef, id: bigint): ParseResult {
  if (def.type === 1) {
    return {
      ok: false,
      reason: "type 1 ids are permuted: invert the edge's permutation, then use parseSlot",
    };
  }
  if (def.layout === "prefix") {
    if (id < 0n || id > INT64_MAX) return { ok: false, reason: `id ${id} is outside 0..2^63-1` };
    const s = prefixShift(def.datacenters);
    const dc = id >> s;
    if (dc >= BigInt(def.datacenters))
      return { ok: false, reason: `id ${id} has DC prefix ${dc}, beyond the ${def.datacenters} datacenters` };
    const rest = id & ((1n << s) - 1n);
    if (rest < def.starting)
      return { ok: false, reason: `id ${id} lies below starting within its DC prefix` };
    if ((rest - def.starting) % def.step !== 0n)
      return { ok: false, reason: `id ${id} is not on the step grid` };
    return { ok: true, dc: Number(dc), counter: (rest - def.starting) / def.step };
  }
  const top = topOf(def, 0);
  if (id < def.starting || id > top) {
    return { ok: false, reason: `id ${id} is outside the sequence's range ${def.starting}..${top}` };
  }
  const offset = id - def.starting;
  if (offset % def.step !== 0n) return { ok: false, reason: `id ${id} is not on the step grid` };
  const slot = offset / def.step;
  const d = BigInt(def.datacenters);
  return { ok: true, dc: Number(slot % d), counter: slot / d };
}
