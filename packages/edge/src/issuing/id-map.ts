// Where a DC's counter values land in a sequence's id space, and the way back. Types 2 and 3 are
// an arithmetic progression per DC (space.ts); type 1 sends the DC's slot through the sequence's
// keyed permutation, so ids look random but are a bijection of the counter: never a repeat.
import type { SequenceDef } from "@dispenser/domain";
import { idBase, idStride, parse, parseSlot, pow10, slotOf, slotSpace } from "@dispenser/domain";
import { EdgeError } from "../errors.js";
import { permutationKeyFor, SlotPermutation } from "../ids/index.js";

export interface IdMap {
  /** The id of counter value c of this edge's DC. */
  idOf(c: bigint): bigint;
  /** Ids of counters c, c+1, ... form a progression with this step (types 2, 3), else undefined. */
  readonly stride: bigint | undefined;
  /** The DC and counter an id was made from; EdgeError invalid-argument if it cannot belong. */
  parse(id: bigint): { dc: number; counter: bigint };
  /** The id as text: zero-padded to the length for fixed-length types. */
  text(id: bigint): string;
  /** Digits text() pads to; 0 when the text is just the decimal digits of the id. */
  readonly width: number;
}

/** Below this a Number prints faster than a bigint (see ids/format.ts idToDecimal). */
const SMALL_MAX = 0x7fff_ffffn;

/** id.toString(), through a Number when that is faster. */
function decimal(id: bigint): string {
  return id >= 0n && id <= SMALL_MAX ? String(Number(id)) : id.toString();
}

export function idMapFor(def: SequenceDef, dc: number, secret = ""): IdMap {
  const width = def.type === 3 ? 0 : (def.length ?? 0);
  const text =
    width === 0
      ? decimal
      : (id: bigint): string => {
          const s = decimal(id);
          return s.length >= width ? s : s.padStart(width, "0");
        };
  const bad = (reason: string): never => {
    throw new EdgeError("invalid-argument", reason, "id");
  };
  if (def.type === 1) {
    const lowest = pow10((def.length ?? 1) - 1);
    const perm = new SlotPermutation(slotSpace(def), permutationKeyFor(def.name, secret));
    return {
      stride: undefined,
      idOf: (c) => lowest + perm.forward(slotOf(def, dc, c)),
      parse: (id) => {
        if (id < lowest || id - lowest >= slotSpace(def)) {
          return bad(`id ${id} does not have the ${def.length} digits of "${def.name}"`);
        }
        const r = parseSlot(def, perm.inverse(id - lowest));
        return r.ok ? { dc: r.dc, counter: r.counter } : bad(r.reason);
      },
      text,
      width,
    };
  }
  const base = idBase(def, dc);
  const stride = idStride(def);
  return {
    stride,
    // Types 3 and most of 2 step by 1 (often from 0): fewer bigint operations per id.
    idOf: stride !== 1n ? (c) => base + stride * c : base === 0n ? (c) => c : (c) => base + c,
    parse: (id) => {
      const r = parse(def, id);
      return r.ok ? { dc: r.dc, counter: r.counter } : bad(r.reason);
    },
    text,
    width,
  };
}
