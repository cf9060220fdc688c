import type { ConfState, Entry, Message, MessageType, Snapshot } from "@dispenser/raft";
import { EntryType } from "@dispenser/raft";
import type { PbConfState, PbEntry, PbMessage, PbSnapshot } from "@dispenser/proto";
import { PbEntryType, PbMessageType } from "@dispenser/proto";

// Conversion between the Raft core's messages (numbers) and the wire (uint64 as bigint). A value
// above 2^53 on the wire is refused: no index or id of a real cluster gets there, so it is garbage.

export class WireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WireError";
  }
}

const TYPES: readonly [MessageType, PbMessageType][] = [
  ["Hup", PbMessageType.MESSAGE_TYPE_HUP],
  ["Beat", PbMessageType.MESSAGE_TYPE_BEAT],
  ["Prop", PbMessageType.MESSAGE_TYPE_PROP],
  ["App", PbMessageType.MESSAGE_TYPE_APP],
  ["AppResp", PbMessageType.MESSAGE_TYPE_APP_RESP],
  ["Vote", PbMessageType.MESSAGE_TYPE_VOTE],
  ["VoteResp", PbMessageType.MESSAGE_TYPE_VOTE_RESP],
  ["PreVote", PbMessageType.MESSAGE_TYPE_PRE_VOTE],
  ["PreVoteResp", PbMessageType.MESSAGE_TYPE_PRE_VOTE_RESP],
  ["Snap", PbMessageType.MESSAGE_TYPE_SNAP],
  ["Heartbeat", PbMessageType.MESSAGE_TYPE_HEARTBEAT],
  ["HeartbeatResp", PbMessageType.MESSAGE_TYPE_HEARTBEAT_RESP],
  ["Unreachable", PbMessageType.MESSAGE_TYPE_UNREACHABLE],
  ["SnapStatus", PbMessageType.MESSAGE_TYPE_SNAP_STATUS],
  ["CheckQuorum", PbMessageType.MESSAGE_TYPE_CHECK_QUORUM],
  ["TransferLeader", PbMessageType.MESSAGE_TYPE_TRANSFER_LEADER],
  ["TimeoutNow", PbMessageType.MESSAGE_TYPE_TIMEOUT_NOW],
  ["ReadIndex", PbMessageType.MESSAGE_TYPE_READ_INDEX],
  ["ReadIndexResp", PbMessageType.MESSAGE_TYPE_READ_INDEX_RESP],
];
const TO_PB = new Map(TYPES);
const FROM_PB = new Map(TYPES.map(([a, b]) => [b, a]));

function num(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new WireError(`${what} ${v} is out of range`);
  return Number(v);
}

export function toPbEntry(e: Entry): PbEntry {
  return {
    term: BigInt(e.term),
    index: BigInt(e.index),
    type:
      e.type === EntryType.ConfChange ? PbEntryType.ENTRY_TYPE_CONF_CHANGE : PbEntryType.ENTRY_TYPE_NORMAL,
    data: e.data,
  };
}

export function fromPbEntry(e: PbEntry): Entry {
  let type: EntryType;
  if (e.type === PbEntryType.ENTRY_TYPE_NORMAL) type = EntryType.Normal;
  else if (e.type === PbEntryType.ENTRY_TYPE_CONF_CHANGE) type = EntryType.ConfChange;
  else throw new WireError(`entry type ${e.type} is unknown`);
  return { term: num(e.term, "entry term"), index: num(e.index, "entry index"), type, data: e.data };
}

function toPbConf(c: ConfState): PbConfState {
  return { voters: c.voters.map(BigInt), learners: c.learners.map(BigInt) };
}

function fromPbConf(c: PbConfState | undefined): ConfState {
  return {
    voters: (c?.voters ?? []).map((v) => num(v, "voter")),
    learners: (c?.learners ?? []).map((v) => num(v, "learner")),
  };
}

export function toPbSnapshot(s: Snapshot, withData = true): PbSnapshot {
  return {
    meta: { index: BigInt(s.meta.index), term: BigInt(s.meta.term), confState: toPbConf(s.meta.confState) },
    data: withData ? s.data : new Uint8Array(),
  };
}

export function fromPbSnapshot(s: PbSnapshot, data?: Uint8Array): Snapshot {
  if (!s.meta) throw new WireError("snapshot without meta");
  return {
    meta: {
      index: num(s.meta.index, "snapshot index"),
      term: num(s.meta.term, "snapshot term"),
      confState: fromPbConf(s.meta.confState),
    },
    data: data ?? s.data,
  };
}

/** The wire form of a message. A Snap message's data travels separately, in chunks. */
export function toPbMessage(m: Message, withSnapshotData = true): PbMessage {
  return {
    type: TO_PB.get(m.type)!,
    to: BigInt(m.to),
    from: BigInt(m.from),
    term: BigInt(m.term),
    logTerm: BigInt(m.logTerm),
    index: BigInt(m.index),
    entries: m.entries.map(toPbEntry),
    commit: BigInt(m.commit),
    snapshot: m.snapshot ? toPbSnapshot(m.snapshot, withSnapshotData) : undefined,
    reject: m.reject,
    rejectHint: BigInt(m.rejectHint),
    context: BigInt(m.context),
  };
}

export function fromPbMessage(m: PbMessage, snapshotData?: Uint8Array): Message {
  const type = FROM_PB.get(m.type);
  if (type === undefined) throw new WireError(`message type ${m.type} is unknown`);
  const snapshot = m.snapshot ? fromPbSnapshot(m.snapshot, snapshotData) : undefined;
  return {
    type,
    to: num(m.to, "to"),
    from: num(m.from, "from"),
    term: num(m.term, "term"),
    logTerm: num(m.logTerm, "log term"),
    index: num(m.index, "index"),
    entries: m.entries.map(fromPbEntry),
    commit: num(m.commit, "commit"),
    ...(snapshot ? { snapshot } : {}),
    reject: m.reject,
    rejectHint: num(m.rejectHint, "reject hint"),
    context: num(m.context, "context"),
  };
}
