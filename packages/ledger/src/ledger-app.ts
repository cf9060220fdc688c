import type { NodeId } from "@dispenser/raft";
import type { GrantTally, LedgerMetrics } from "./metrics.js";
import type { Application, SnapshotJob } from "./raft-server/raft-server.js";
import type { Command, Fence } from "./state/commands.js";
import { encodeCommand } from "./state/commands.js";
import type { Outcome } from "./state/ledger-state.js";
import { LedgerState } from "./state/ledger-state.js";
import type { Result } from "./state/result.js";
import { fail } from "./state/result.js";

// What a ledger entry holds: one tag byte, then the payload. The ledger's own commands, or a
// member's addresses (replicated so every node can reach a member added at run time): where
// clients reach its Ledger service, and where members reach its Peer service (the same address
// when one port serves both; entries written before the two were apart have no `peer`).
const TAG_COMMAND = 1;
const TAG_MEMBER_ADDRESS = 2;
/** Longest member address (client or peer) the book takes. */
export const MAX_MEMBER_ADDRESS_CHARS = 255;

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeLedgerCommand(cmd: Command): Uint8Array {
  const body = encodeCommand(cmd);
  const out = new Uint8Array(body.byteLength + 1);
  out[0] = TAG_COMMAND;
  out.set(body, 1);
  return out;
}

/** Where a member is reached: by clients (`address`) and by the other members (`peer`). */
export interface MemberAddresses {
  readonly address: string;
  readonly peer: string;
}

export function encodeMemberAddress(id: NodeId, address: string, peer?: string): Uint8Array {
  const body = enc.encode(
    JSON.stringify(peer === undefined || peer === address ? { id, address } : { id, address, peer }),
  );
  const out = new Uint8Array(body.byteLength + 1);
  out[0] = TAG_MEMBER_ADDRESS;
  out.set(body, 1);
  return out;
}

/** The GrantTally of one sequence, as this node keeps it up to date. */
interface Tally extends GrantTally {
  segments: number;
  windows: number;
  ids: number;
  marks: Map<number, number>;
}

export type AppResult =
  Result<Outcome> | { ok: true; data: { type: "MemberAddress"; id: NodeId; address: string; peer: string } };

const validAddress = (a: unknown): a is string =>
  typeof a === "string" && a.length > 0 && a.length <= MAX_MEMBER_ADDRESS_CHARS;

/** The ledger's replicated application: the state machine plus the members' address book. */
export class LedgerApp implements Application<AppResult> {
  state = new LedgerState();
  /** Each member's addresses, as committed (members named on the command line may be absent). */
  readonly addresses = new Map<NodeId, MemberAddresses>();
  /** Per sequence, what this node applied; bounded by the state's own limit on names. */
  private readonly tally = new Map<string, Tally>();

  constructor(
    private readonly nodeId: NodeId,
    private readonly metrics: LedgerMetrics,
    /** Told when a member's address is committed, so the transport can reach it. */
    private readonly onAddress: (id: NodeId, a: MemberAddresses) => void = () => {},
  ) {
    metrics.addGrantSource(nodeId, () => this.tally);
  }

  apply(data: Uint8Array, at: Fence): AppResult {
    const tag = data[0];
    if (tag === TAG_MEMBER_ADDRESS) {
      let o: { id?: unknown; address?: unknown; peer?: unknown };
      try {
        o = JSON.parse(dec.decode(data.subarray(1))) as typeof o;
      } catch {
        return fail("invalid-argument", "malformed member address entry");
      }
      if (typeof o.id !== "number" || !Number.isSafeInteger(o.id) || o.id <= 0)
        return fail("invalid-argument", "member id must be a positive integer");
      if (!validAddress(o.address)) return fail("invalid-argument", "member address must be host:port");
      if (o.peer !== undefined && !validAddress(o.peer))
        return fail("invalid-argument", "member peer address must be host:port");
      const a = { address: o.address, peer: o.peer ?? o.address };
      this.addresses.set(o.id, a);
      this.onAddress(o.id, a);
      return { ok: true, data: { type: "MemberAddress", id: o.id, ...a } };
    }
    if (tag !== TAG_COMMAND) return fail("invalid-argument", `unknown entry tag ${tag}`);
    const r = this.state.applyBytes(data.subarray(1), at);
    this.observe(r);
    return r;
  }

  private observe(r: Result<Outcome>): void {
    if (!r.ok) {
      this.metrics.grantErrors.inc({ node: String(this.nodeId), code: r.code });
      return;
    }
    if (r.data.type === "LeaseSegment" && !r.data.replayed) {
      const g = r.data.grant;
      const t = this.tallyOf(g.name);
      if (g.kind === "window") t.windows++;
      else t.segments++;
      t.ids += Number(g.end - g.start);
      t.marks.set(g.dc, Number(g.end));
    } else if (r.data.type === "ReturnSegment") {
      this.tallyOf(r.data.name).marks.set(r.data.dc, Number(r.data.hwm));
    }
  }

  private tallyOf(name: string): Tally {
    let t = this.tally.get(name);
    if (!t) {
      t = { segments: 0, windows: 0, ids: 0, marks: new Map() };
      this.tally.set(name, t);
    }
    return t;
  }

  beginSnapshot(): SnapshotJob {
    const addresses = [...this.addresses];
    const job = this.state.beginSnapshot();
    return {
      step: (names) => job.step(names),
      result: () => appSnapshot(job.result(), addresses),
      cancel: () => job.cancel(),
    };
  }

  restore(data: Uint8Array): void {
    this.addresses.clear();
    if (data.byteLength === 0) {
      this.state = new LedgerState();
      return;
    }
    const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const n = v.getUint32(0);
    // [id, address] or [id, address, peer] (a member with a peer port of its own).
    const book = JSON.parse(dec.decode(data.subarray(4, 4 + n))) as [NodeId, string, string?][];
    const m = v.getUint32(4 + n);
    this.state = LedgerState.restore(data.subarray(8 + n, 8 + n + m));
    for (const [id, address, peer] of book) {
      const a = { address, peer: peer ?? address };
      this.addresses.set(id, a);
      this.onAddress(id, a);
    }
  }
}

/**
 * The application snapshot: the members' address book, then the state machine's snapshot, each
 * length-prefixed. Also what a restore from a backup starts every node with.
 */
export function appSnapshot(
  state: Uint8Array,
  addresses: readonly (readonly [NodeId, MemberAddresses])[],
): Uint8Array {
  const rows = [...addresses]
    .sort((a, b) => a[0] - b[0])
    .map(([id, a]) => (a.peer === a.address ? [id, a.address] : [id, a.address, a.peer]));
  const book = enc.encode(JSON.stringify(rows));
  const out = new Uint8Array(8 + book.byteLength + state.byteLength);
  const v = new DataView(out.buffer);
  v.setUint32(0, book.byteLength);
  out.set(book, 4);
  v.setUint32(4 + book.byteLength, state.byteLength);
  out.set(state, 8 + book.byteLength);
  return out;
}
