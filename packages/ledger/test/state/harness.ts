// A tiny driver for LedgerState tests: stamps each command with the next (term, index).

import { createHash } from "node:crypto";
import type { Command, Fence } from "../../src/state/commands.js";
import type { OutcomeByType } from "../../src/state/ledger-state.js";
import { LedgerState } from "../../src/state/ledger-state.js";
import type { Result } from "../../src/state/result.js";
import type { SequenceDef, SequenceSpec } from "@dispenser/domain";
import { normalizeSequenceDef } from "@dispenser/domain";

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

  /** The return token of each grant by its fence, as the holder of the grant keeps it. */
  readonly tokens = new Map<string, string>();

  lease(name: string, dc: number, size: bigint, requestId: string, kind: "segment" | "window" = "segment") {
    const returnToken = tokenOf(requestId);
    const r = this.run({ type: "LeaseSegment", name, dc, size, requestId, kind, returnToken });
    if (r.ok) this.tokens.set(fenceKey(r.data.grant.fence), r.data.grant.returnToken);
    return r;
  }

  /** Returns with the grant's own token (a holder's return); `token` overrides it (a stranger's). */
  giveBack(
    name: string,
    dc: number,
    start: bigint,
    end: bigint,
    fence: Fence,
    requestId: string,
    token?: string,
  ) {
    const returnToken = token ?? this.tokens.get(fenceKey(fence)) ?? "f".repeat(32);
    return this.run({ type: "ReturnSegment", name, dc, start, end, fence, returnToken, requestId });
  }
}

const fenceKey = (f: Fence): string => `${f.term}/${f.index}`;

/** A token that differs per request id, deterministically (a leader draws it at random). */
export function tokenOf(requestId: string): string {
  return createHash("sha256").update(requestId).digest("hex").slice(0, 32);
}
