// The pure ledger state machine, importable without the server (the simulator runs it).
export type { Command, CommandType, Fence, LeaseKind } from "./commands.js";
export { decodeCommand, encodeCommand, validateCommand } from "./commands.js";
export type { DcInfo, Grant, LeaseOutcome, Outcome, SequenceRecord } from "./ledger-state.js";
export type { SnapshotJob } from "./ledger-state.js";
export { LedgerState, snapshotDocument } from "./ledger-state.js";
export type { ErrorCode, Failure, Result } from "./result.js";
export type { AutoDisk, Layout, Ordering, SequenceDef, SequenceSpec, SequenceType } from "./sequence.js";
export { AUTO_DISKS, MAX_RESERVE_SECONDS, normalizeSequenceDef, ORDERINGS } from "./sequence.js";
export type { ParseResult } from "./space.js";
export { capacity, idBase, idOf, idStride, parse, parseSlot, pow10, slotOf, slotSpace } from "./space.js";
