// What the Ledger service's handler modules share: the error a call fails with, and the checks and
// conversions of request fields.
import type { SequenceDefinition } from "@dispenser/proto";
import { ErrorReason } from "@dispenser/proto";
import { toPbSequence } from "@dispenser/domain";
import type { NodeId } from "@dispenser/raft";
import { status } from "@grpc/grpc-js";
import type { SequenceRecord } from "../state/ledger-state.js";
import type { ErrorCode } from "../state/result.js";

/** An error to send as a gRPC status. */
export class CallError extends Error {
  constructor(
    readonly code: status,
    message: string,
    readonly reason: ErrorReason,
    readonly field = "",
  ) {
    super(message);
  }
}

export const STATE_CODES: Record<ErrorCode, [status, ErrorReason]> = {
  "invalid-argument": [status.INVALID_ARGUMENT, ErrorReason.ERROR_REASON_INVALID_ARGUMENT],
  "not-found": [status.NOT_FOUND, ErrorReason.ERROR_REASON_NOT_FOUND],
  "already-exists": [status.ALREADY_EXISTS, ErrorReason.ERROR_REASON_ALREADY_EXISTS],
  exhausted: [status.RESOURCE_EXHAUSTED, ErrorReason.ERROR_REASON_SEQUENCE_EXHAUSTED],
  "failed-precondition": [status.FAILED_PRECONDITION, ErrorReason.ERROR_REASON_UNSPECIFIED],
  aborted: [status.ABORTED, ErrorReason.ERROR_REASON_REVISION_MISMATCH],
};

/** A catalog record as the ledger answers it. */
export const pbOf = (r: SequenceRecord): SequenceDefinition =>
  toPbSequence(r.def, { revision: r.modRevision, createdAtMs: r.createdAtMs });

export function nodeIdOf(v: bigint, field: string): NodeId {
  if (v <= 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new CallError(
      status.INVALID_ARGUMENT,
      `${field} must be a positive node id`,
      ErrorReason.ERROR_REASON_INVALID_ARGUMENT,
      field,
    );
  }
  return Number(v);
}

/** An expected revision of 0 means none. */
export const expected = (rev: bigint): { expectedRevision?: bigint } =>
  rev === 0n ? {} : { expectedRevision: rev };
