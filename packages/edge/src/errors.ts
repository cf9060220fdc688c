// Expected failures of the edge, with stable codes. The gRPC layer maps a code to a status code and
// the RESP layer to an error line; neither guesses from message text.
import { onUnknownValue } from "@dispenser/domain";

export type EdgeErrorCode =
  | "invalid-argument" // a malformed request: nothing was issued
  | "not-found" // no such sequence
  | "already-exists" // create of an existing name
  | "exhausted" // the sequence has no ids left in this DC: an error, never a wrap
  | "overloaded" // a bound was hit (waiters, sequences): retry with back-off
  | "unavailable" // no ids buffered and the ledger cannot be reached, or draining
  | "deadline" // the caller's deadline passed while waiting for a segment; nothing was issued
  | "failed-precondition" // the call does not fit the sequence (e.g. Lease of a type 1 sequence)
  | "aborted" // a revision did not match
  | "unauthenticated" // no valid credentials shown
  | "permission-denied" // the user's role or caps do not allow the call
  | "internal";

export class EdgeError extends Error {
  constructor(
    readonly code: EdgeErrorCode,
    message: string,
    /** The request field at fault, for invalid-argument. */
    readonly field = "",
  ) {
    super(message);
    this.name = "EdgeError";
  }
}

/** A conversion off or onto the wire whose unknown enum values are the caller's error. */
export function wireInput<T>(f: () => T): T {
  return onUnknownValue(f, (e) => new EdgeError("invalid-argument", e.message, e.field));
}

export function isEdgeError(e: unknown): e is EdgeError {
  return e instanceof EdgeError;
}
