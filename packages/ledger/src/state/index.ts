// The pure ledger state machine, importable without the server (the simulator runs it). The
// sequence model it keeps is @dispenser/domain's.
export type { Command, CommandType, Fence, LeaseKind } from "./commands.js";
export { decodeCommand, encodeCommand, validateCommand } from "./commands.js";
export type { DcInfo, Grant, LeaseOutcome, Outcome, SequenceRecord } from "./ledger-state.js";
export type { SnapshotJob } from "./ledger-state.js";
export { LedgerState, snapshotDocument } from "./ledger-state.js";
export type { ErrorCode, Failure, Result } from "./result.js";
