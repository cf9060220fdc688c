// A tiny driver for LedgerState tests: stamps each command with the next (term, index).

import type { Command, Fence } from "../../src/state/commands.js";
import type { OutcomeByType } from "../../src/state/ledger-state.js";
import { LedgerState } from "../../src/state/ledger-state.js";
import type { Result } from "../../src/state/result.js";
import type { SequenceDef, SequenceSpec } from "../../src/state/sequence.js";
import { normalizeSequenceDef } from "../../src/state/sequence.js";

export function seqDef(spec: SequenceSpec): SequenceDef {
  const r = normalizeSequenceDef(spec);
  if (!r.ok) throw new Error(r.errors.map((e) => e.reason).join("; "));
  return r.def;
}

export class Driver {
  term = 1;
  index = 0;

  constructor(public state = new LedgerState()) {}

  next(): Fence {
    this.index += 1;
    return { term: this.term, index: this.index };
  }

  run<C extends Command>(cmd: C): Result<OutcomeByType[C["type"]]> {
    return this.state.apply(cmd, this.next());
  }

  /** Applies and expects success. */
  must<C extends Command>(cmd: C): OutcomeByType[C["type"]] {
    const r = this.run(cmd);
    if (!r.ok) throw new Error(`${cmd.type} failed: ${r.code}: ${r.message}`);
    return r.data;
  }

  create(spec: SequenceSpec, createdAtMs = 1_000): OutcomeByType["CreateSequence"] {
    return this.must({ type: "CreateSequence", def: seqDef(spec), createdAtMs });
  }

  lease(name: string, dc: number, size: bigint, requestId: string, kind: "segment" | "window" = "segment") {
    return this.run({ type: "LeaseSegment", name, dc, size, requestId, kind });
  }

  giveBack(name: string, dc: number, start: bigint, end: bigint, fence: Fence, requestId: string) {
    return this.run({ type: "ReturnSegment", name, dc, start, end, fence, requestId });
  }
}
