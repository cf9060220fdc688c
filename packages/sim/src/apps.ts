import { encodeCommand, LedgerState } from "@dispenser/ledger/state";
import { normalizeSequenceDef } from "@dispenser/domain";
import type { Grant } from "./allocator.js";
import { Allocator, encodeAlloc } from "./allocator.js";

/**
 * A replicated application the simulator can run: something that hands out ranges, so the
 * checkers can assert that acknowledged ranges never overlap, per key.
 */
export interface SimApp {
  /** Apply a committed entry; the range it granted, if any, with the key of its space. */
  apply(data: Uint8Array, at: { term: number; index: number }): { key: string; grant: Grant } | undefined;
  /** Sum of the marks of every key: never decreases. */
  totalMark(): number;
  /** Mark of one key's space: everything below it was granted. */
  markOf(key: string): number;
  snapshot(): Uint8Array;
}

export interface SimAppKind {
  readonly name: "allocator" | "ledger";
  /** A retried request gets its first answer (request ids are remembered). */
  readonly idempotent: boolean;
  /** The spaces requests draw from. */
  readonly keys: readonly string[];
  initial(): SimApp;
  restore(data: Uint8Array): SimApp;
  /** A request for `size` ids in `key`'s space. Retries of one request reuse its requestId. */
  encodeRequest(key: string, requestId: number, size: number): Uint8Array;
}

class AllocatorApp implements SimApp {
  constructor(private readonly a: Allocator) {}
  apply(data: Uint8Array): { key: string; grant: Grant } | undefined {
    const g = this.a.apply(data);
    return g ? { key: "", grant: g } : undefined;
  }
  totalMark(): number {
    return this.a.mark;
  }
  markOf(): number {
    return this.a.mark;
  }
  snapshot(): Uint8Array {
    return this.a.snapshot();
  }
}

export const ALLOCATOR: SimAppKind = {
  name: "allocator",
  idempotent: false,
  keys: [""],
  initial: () => new AllocatorApp(new Allocator()),
  restore: (data) => new AllocatorApp(Allocator.restore(data)),
  encodeRequest: (_key, requestId, size) => encodeAlloc({ requestId, size }),
};

// The segment ledger's own state machine, leasing from a few (sequence, dc) spaces.
const SEQUENCES = [
  { name: "orders", type: 3, datacenters: 2 },
  { name: "tickets", type: 2, length: 9, datacenters: 1 },
] as const;
const LEDGER_KEYS = ["orders/0", "orders/1", "tickets/0"];

class LedgerApp implements SimApp {
  constructor(private readonly s: LedgerState) {}
  apply(data: Uint8Array, at: { term: number; index: number }): { key: string; grant: Grant } | undefined {
    const r = this.s.applyBytes(data, at);
    if (!r.ok || r.data.type !== "LeaseSegment") return undefined;
    const g = r.data.grant;
    return {
      key: `${g.name}/${g.dc}`,
      grant: { requestId: Number(g.requestId.slice(1)), start: Number(g.start), end: Number(g.end) },
    };
  }
  totalMark(): number {
    let sum = 0;
    for (const k of LEDGER_KEYS) sum += this.markOf(k);
    return sum;
  }
  markOf(key: string): number {
    const [name, dc] = key.split("/") as [string, string];
    return Number(this.s.dcInfo(name, Number(dc))?.hwm ?? 0n);
  }
  snapshot(): Uint8Array {
    return this.s.snapshot();
  }
}

function ledgerInitial(): LedgerState {
  const s = new LedgerState();
  let index = 1;
  for (const spec of SEQUENCES) {
    const def = normalizeSequenceDef(spec);
    if (!def.ok) throw new Error(`bad sequence in the simulator: ${JSON.stringify(def.errors)}`);
    const r = s.apply({ type: "CreateSequence", def: def.def, createdAtMs: 0 }, { term: 1, index: index++ });
    if (!r.ok) throw new Error(r.message);
  }
  return s;
}

export const LEDGER: SimAppKind = {
  name: "ledger",
  idempotent: true,
  keys: LEDGER_KEYS,
  initial: () => new LedgerApp(ledgerInitial()),
  // An empty snapshot is a new member's: it receives the leader's snapshot before applying anything.
  restore: (data) => new LedgerApp(data.byteLength === 0 ? new LedgerState() : LedgerState.restore(data)),
  encodeRequest: (key, requestId, size) => {
    const [name, dc] = key.split("/") as [string, string];
    return encodeCommand({
      type: "LeaseSegment",
      name,
      dc: Number(dc),
      size: BigInt(size),
      requestId: `r${requestId}`,
      kind: "segment",
      // Deterministic in the simulator (a real leader draws it from its CSPRNG).
      returnToken: requestId.toString(16).padStart(32, "0"),
    });
  },
};
