// The simulator's clock and its events: everything that happens in a run is one of these, popped
// from one queue ordered by (time, insertion).
import type { Message, NodeId } from "@dispenser/raft";
import { DEFAULT_TICK_MS } from "@dispenser/raft";
import type { ClientRequest } from "./node.js";

export type Event =
  | { kind: "tick"; node: NodeId; inc: number }
  | { kind: "deliver"; m: Message }
  /** A step of a node's host: a turn of its event loop, a timer, a write that synced. */
  | { kind: "host"; node: NodeId; inc: number; k: () => void }
  | { kind: "crash"; node: NodeId }
  | { kind: "restart"; node: NodeId }
  | { kind: "client" }
  | { kind: "read" }
  | { kind: "admin" }
  | { kind: "transfer" }
  | { kind: "partition" }
  | { kind: "heal"; links: [NodeId, NodeId][] }
  | { kind: "faults" }
  | { kind: "liveness-start" }
  | { kind: "client-arrive"; node: NodeId; request: ClientRequest }
  | { kind: "decommission"; node: NodeId }
  | { kind: "kill"; node: NodeId; inc: number }
  | { kind: "snapshot-status"; from: NodeId; inc: number; peer: NodeId; ok: boolean };

/** Time units per tick: message and disk delays are finer than a tick. */
export const TICK = 10;
/** Milliseconds of the loop's clock per time unit: a tick lasts as long as production's. */
export const MS_PER_UNIT = DEFAULT_TICK_MS / TICK;
/** A read not confirmed within this long fails, as in production. */
export const READ_TIMEOUT_MS = 5_000;
export const ELECTION_TICKS = 10;
export const HEARTBEAT_TICKS = 2;
