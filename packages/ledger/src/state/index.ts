// The pure ledger state machine, importable without the server (the simulator runs it).
export type { Command, CommandType, Fence, LeaseKind } from "./commands.js";
export { decodeCommand, encodeCommand, validateCommand } from "./commands.js";
export type { DcInfo, Grant, LeaseOutcome, Outcome, SequenceRecord } from "./ledger-state.js";
export { LedgerState } from "./ledger-state.js";
export type { ErrorCode, Failure, Result } from "./result.js";
export type { SequenceDef, SequenceSpec } from "./sequence.js";
export { normalizeSequenceDef } from "./sequence.js";
export { capacity, idOf, parse } from "./space.js";
