// Wire and storage types of the Raft core. Indexes and terms are plain numbers: they stay far
// below 2^53 for any realistic cluster lifetime, and are asserted to be safe integers on decode.

export type NodeId = number;

/** No node: used for "no vote" and "no known leader". Real node ids are positive. */
export const NONE: NodeId = 0;

export const EntryType = {
  /** Application data, or an empty entry appended by a new leader. */
  Normal: 0,
  /** A single-server membership change (see `ConfChange`). */
  ConfChange: 1,
} as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** The part of a node's state that must be synced before any message that depends on it is sent. */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

export const EMPTY_HARD_STATE: HardState = Object.freeze({ term: 0, vote: NONE, commit: 0 });

/** The membership of the group. Voters count toward quorums; learners only receive the log. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

export const EMPTY_CONF_STATE: ConfState = Object.freeze({ voters: [], learners: [] });

export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  /** The membership as of `index`: installing the snapshot installs this configuration. */
  readonly confState: ConfState;
}

export interface Snapshot {
  readonly meta: SnapshotMeta;
  /** Application state as of `meta.index`, opaque to the core. */
  readonly data: Uint8Array;
}

export const ConfChangeType = {
  /** Add a voter, or promote an existing learner to voter. */
  AddVoter: 0,
  AddLearner: 1,
  Remove: 2,
  /**
   * Promote a learner to voter; a no-op unless the node is a learner when the change applies.
   * Unlike AddVoter it cannot bring back a member removed in the meantime.
   */
  PromoteLearner: 3,
} as const;
export type ConfChangeType = (typeof ConfChangeType)[keyof typeof ConfChangeType];

export interface ConfChange {
  readonly type: ConfChangeType;
  readonly nodeId: NodeId;
}

export const MessageType = {
  /** Local: start an election (pre-vote first when enabled). */
  Hup: "Hup",
  /** Local: the leader should send heartbeats. */
  Beat: "Beat",
  /** Local: a proposal of new entries. */
  Prop: "Prop",
  App: "App",
  AppResp: "AppResp",
  Vote: "Vote",
  VoteResp: "VoteResp",
  PreVote: "PreVote",
  PreVoteResp: "PreVoteResp",
  Snap: "Snap",
  Heartbeat: "Heartbeat",
  HeartbeatResp: "HeartbeatResp",
  /** Local: the transport could not reach `from`. */
  Unreachable: "Unreachable",
  /** Local: the outcome of sending a snapshot to `from` (`reject` on failure). */
  SnapStatus: "SnapStatus",
  /** Local: the leader should check that a quorum is still active. */
  CheckQuorum: "CheckQuorum",
  TransferLeader: "TransferLeader",
  TimeoutNow: "TimeoutNow",
  ReadIndex: "ReadIndex",
  ReadIndexResp: "ReadIndexResp",
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/**
 * One message between nodes (or a local input). Fields not used by a type are left at their zero
 * values. Every response carries the term of its sender, so stale responses are recognisable.
 */
export interface Message {
  readonly type: MessageType;
  readonly to: NodeId;
  readonly from: NodeId;
  readonly term: number;
  /** App: term of the entry at `index`. Vote/PreVote: term of the candidate's last entry. */
  readonly logTerm: number;
  /** App: index preceding `entries`. AppResp: the index acknowledged or rejected. */
  readonly index: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
  readonly snapshot?: Snapshot;
  readonly reject: boolean;
  /** AppResp rejection: the follower's hint of where the logs may agree. */
  readonly rejectHint: number;
  /**
   * Heartbeat/HeartbeatResp: the leader's read round. ReadIndex/ReadIndexResp: the caller's
   * request id. Vote: 1 when the election is a leader transfer (ignores the leader lease).
   */
  readonly context: number;
}

export function message(fields: Partial<Message> & Pick<Message, "type">): Message {
  return {
    to: NONE,
    from: NONE,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    context: 0,
    ...fields,
  };
}

/** Whether a message type is a response whose term we must treat as a peer's vote or ack. */
export function isResponse(type: MessageType): boolean {
  return (
    type === MessageType.AppResp ||
    type === MessageType.VoteResp ||
    type === MessageType.PreVoteResp ||
    type === MessageType.HeartbeatResp ||
    type === MessageType.ReadIndexResp
  );
}

export function isLocal(type: MessageType): boolean {
  return (
    type === MessageType.Hup ||
    type === MessageType.Beat ||
    type === MessageType.Unreachable ||
    type === MessageType.SnapStatus ||
    type === MessageType.CheckQuorum
  );
}

export function entryBytes(e: Entry): number {
  // A fixed overhead per entry keeps empty entries from being free in flow control.
  return e.data.byteLength + 24;
}
