// Why a peer's message is dropped, as a fixed set of metric label values: the core's rules (see
// @dispenser/raft's validate.ts) and the transport's own. A sender can pick which one it trips,
// never invent a new series.
import { REFUSAL_KINDS } from "@dispenser/raft";

export const TRANSPORT_REFUSAL_KINDS = [
  /** The connection did not present a certificate of this cluster's CA with a member's identity. */
  "unauthenticated",
  /** A message's or batch's `from` is not the peer the connection authenticated as. */
  "sender-mismatch",
  "wrong-cluster",
  /** Undecodable, addressed to another node, or a snapshot on the batch stream. */
  "malformed",
] as const;
export type TransportRefusalKind = (typeof TRANSPORT_REFUSAL_KINDS)[number];

export const PEER_REFUSAL_KINDS = [...REFUSAL_KINDS, ...TRANSPORT_REFUSAL_KINDS] as const;
