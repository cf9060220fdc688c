// Type 1 ids of one sequence, end to end: counter → slot (slotOf, shared with the ledger) → keyed
// permutation → id, and back through the inverse permutation and parseSlot.

import type { ParseResult, SequenceDef } from "@dispenser/ledger/state";
import { parseSlot, slotOf, slotSpace } from "@dispenser/ledger/state";
import { permutationKeyFor, PermutedIdSpace } from "./permutation.js";

export class Type1Ids {
  readonly def: SequenceDef;
  readonly space: PermutedIdSpace;

  /** Every edge of a cluster must pass the same cluster secret, or their ids would collide. */
  constructor(def: SequenceDef, clusterSecret?: string) {
    if (def.type !== 1 || def.length === undefined) {
      throw new RangeError(`sequence "${def.name}" is type ${def.type}, not a type 1 sequence`);
    }
    this.def = def;
    this.space = new PermutedIdSpace(def.length, permutationKeyFor(def.name, clusterSecret));
    if (this.space.slots !== slotSpace(def)) {
      throw new Error(`assertion: ${this.space.slots} slots, the ledger counts ${slotSpace(def)}`);
    }
  }

  /** The id of counter value c of datacenter dc; outside the DC's capacity is a RangeError. */
  idOf(dc: number, c: bigint): bigint {
    return this.space.idOf(slotOf(this.def, dc, c));
  }

  /** Which DC issued an id and at which counter value, or why the id is not of this sequence. */
  parse(id: bigint): ParseResult {
    const slot = this.space.slotOf(id);
    return slot.ok ? parseSlot(this.def, slot.slot) : slot;
  }
}
