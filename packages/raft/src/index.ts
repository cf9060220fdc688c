export type { RaftLogger, RaftOptions, Rand } from "./config.js";
export { DEFAULT_TICK_MS, resolveOptions, silentLogger } from "./config.js";
export { decodeConfChange, encodeConfChange } from "./confchange.js";
export { AssertionError, StorageError, assert, isStorageError } from "./errors.js";
export type { ProposeError, ProposeResult, ReadState, Role } from "./raft.js";
export { CAMPAIGN_TRANSFER } from "./raft.js";
export type { Ready, SoftState, Status } from "./rawnode.js";
export { RawNode } from "./rawnode.js";
export type { Storage } from "./storage.js";
export { Prng } from "./prng.js";
export type { Refusal, RefusalKind } from "./validate.js";
export { REFUSAL_KINDS, checkPeerMessage } from "./validate.js";
export { MemoryStorage, limitSize } from "./storage.js";
export type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  NodeId,
  Snapshot,
  SnapshotMeta,
} from "./types.js";
export {
  ConfChangeType,
  EMPTY_CONF_STATE,
  EMPTY_HARD_STATE,
  EntryType,
  MessageType,
  NONE,
  entryBytes,
  message,
} from "./types.js";
export { NotLeaderError, ProposalDroppedError, ProposalRejectedError } from "./loop/errors.js";
export type {
  Answer,
  Application,
  Done,
  LoopEvents,
  LoopHost,
  LoopStorage,
  SnapshotJob,
} from "./loop/host.js";
export { completedJob } from "./loop/host.js";
export type { ReadyLoopOptions } from "./loop/ready-loop.js";
export { READY_LOOP_DEFAULTS, ReadyLoop, needsWrite } from "./loop/ready-loop.js";
