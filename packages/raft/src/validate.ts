// What a message from the network must look like before the core steps it. A peer (a buggy one,
// or anyone who reaches the port before the transport authenticates it) must never be able to trip
// an assertion: the assertions guard this node's own invariants, and a crash on input is a
// denial of service. A message that breaks a rule is dropped; the host counts and logs the kind.
//
// The checks here need nothing but the message; the ones that need the node's state (a commit
// beyond our log, an ack beyond the leader's log) are made in raft.ts before anything changes.
// (An append cannot replace a committed entry: one that starts below our commit index is answered
// with that index and goes no further, so that assertion needs no check here.)
import type { Message, NodeId } from "./types.js";
import { isLocal, MessageType } from "./types.js";

/** Why a message was dropped: a fixed set, so a metric's label cannot be chosen by a sender. */
export const REFUSAL_KINDS = [
  "local-type",
  "wrong-recipient",
  "no-term",
  "malformed-append",
  "malformed-snapshot",
  "commit-beyond-log",
  "ack-beyond-log",
] as const;
export type RefusalKind = (typeof REFUSAL_KINDS)[number];

export interface Refusal {
  readonly kind: RefusalKind;
  readonly detail: string;
}

/** Types a peer may send with term 0: requests it forwards towards the leader. */
const TERMLESS: ReadonlySet<MessageType> = new Set([
  MessageType.Prop,
  MessageType.ReadIndex,
  MessageType.TransferLeader,
]);

export function refusal(kind: RefusalKind, detail: string): Refusal {
  return { kind, detail };
}

/** The problem with a message from the network addressed to node `self`, or undefined. */
export function checkPeerMessage(m: Message, self: NodeId): Refusal | undefined {
  if (isLocal(m.type)) return refusal("local-type", `type ${m.type} is local to a node`);
  // A forwarded request keeps its sender, and may come back to it (a read forwarded by a node
  // that just learned its sender leads now): only those may claim to come from us.
  if (m.to !== self || !(m.from > 0) || (m.from === self && !TERMLESS.has(m.type)))
    return refusal("wrong-recipient", `from ${m.from} to ${m.to} reached node ${self}`);
  if (m.term === 0 && !TERMLESS.has(m.type)) return refusal("no-term", `type ${m.type} without a term`);
  if (m.type === MessageType.App) return checkAppend(m);
  if (m.type === MessageType.Snap) return checkSnapshot(m);
  if (m.snapshot !== undefined) return refusal("malformed-snapshot", `type ${m.type} carries a snapshot`);
  return undefined;
}

/** Entries follow the probe point one by one, in terms that never go back or pass the sender's. */
function checkAppend(m: Message): Refusal | undefined {
  if (m.logTerm > m.term) return refusal("malformed-append", `log term ${m.logTerm} above term ${m.term}`);
  let prevTerm = m.logTerm;
  for (let i = 0; i < m.entries.length; i++) {
    const e = m.entries[i]!;
    if (e.index !== m.index + 1 + i)
      return refusal("malformed-append", `entry ${i} has index ${e.index}, not ${m.index + 1 + i}`);
    if (e.term < prevTerm || e.term > m.term)
      return refusal(
        "malformed-append",
        `entry ${e.index} has term ${e.term} outside ${prevTerm}..${m.term}`,
      );
    prevTerm = e.term;
  }
  return undefined;
}

function checkSnapshot(m: Message): Refusal | undefined {
  const s = m.snapshot;
  if (s === undefined) return refusal("malformed-snapshot", "a snapshot message without a snapshot");
  if (m.entries.length > 0) return refusal("malformed-snapshot", "a snapshot message with entries");
  if (!(s.meta.index > 0) || !(s.meta.term > 0) || s.meta.term > m.term)
    return refusal("malformed-snapshot", `snapshot at ${s.meta.index}/${s.meta.term} in term ${m.term}`);
  if (s.meta.confState.voters.length === 0) return refusal("malformed-snapshot", "a snapshot without voters");
  return undefined;
}
