// What a draw can fail with, as a stable `code` to branch on (never the message text), mapped from
// the gRPC status and the edge's ErrorDetail trailer in one place.
import { ErrorReason, errorDetailOf } from "@dispenser/proto";
import type { ServiceError } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";

export type DispenserErrorCode =
  /** A malformed request or option; nothing was drawn. `field` names the culprit. */
  | "invalid-argument"
  /** No such sequence. */
  | "not-found"
  /** The sequence has no ids left in this datacenter (type 2 ran out of its length): never a wrap. */
  | "exhausted"
  /** No edge could be reached (every endpoint answered UNAVAILABLE or nothing). Retry later. */
  | "unavailable"
  /** A draw waited longer than `drawTimeoutMs`, or the edges kept timing out. */
  | "deadline"
  /** A bound was hit: `maxWaiters` here, or the edge shedding load. Retry with back-off. */
  | "overloaded"
  /** The call does not fit the sequence (e.g. ordering `dc` on an edge without its Redis pool). */
  | "failed-precondition"
  /** The client was closed; nothing more is drawn. */
  | "closed"
  /**
   * The ledger forgot what it granted: a range came from another cluster identity than the first
   * one seen, or lay below a range this client already had from that datacenter (a ledger that
   * lost its data, or was restored from an old backup). The range is not used. An operator must
   * raise the sequence's marks (`dispenser seq raise-mark`); retrying does not help until then.
   */
  | "ledger-forgot"
  /** The edge wants a token (see the `token` option), or did not accept the one sent. */
  | "unauthenticated"
  /** The token's user may not make this call (its role, or a draw beyond its ids-per-call cap). */
  | "permission-denied"
  /** Anything else: a bug or a protocol mismatch. */
  | "internal";

export class DispenserError extends Error {
  constructor(
    readonly code: DispenserErrorCode,
    message: string,
    readonly details: {
      /** The request field or option at fault, for invalid-argument. */
      readonly field?: string;
      /** The gRPC status code the edge answered, when the error came from a call. */
      readonly grpcCode?: status;
      /** The ErrorDetail reason the edge sent, when it sent one. */
      readonly reason?: ErrorReason;
      /** The edge (host:port) that answered, when the error came from a call. */
      readonly endpoint?: string;
    } = {},
  ) {
    super(message);
    this.name = "DispenserError";
  }

  get field(): string | undefined {
    return this.details.field;
  }
}

export function isDispenserError(e: unknown): e is DispenserError {
  return e instanceof DispenserError;
}

/** The code a failed call maps to: the status first, the ErrorDetail reason where a status is shared. */
export function codeOf(grpcCode: status, reason: ErrorReason | undefined): DispenserErrorCode {
  switch (grpcCode) {
    case status.INVALID_ARGUMENT:
    case status.OUT_OF_RANGE:
      return "invalid-argument";
    case status.NOT_FOUND:
      return "not-found";
    case status.RESOURCE_EXHAUSTED:
      return reason === ErrorReason.ERROR_REASON_SEQUENCE_EXHAUSTED ? "exhausted" : "overloaded";
    case status.UNAVAILABLE:
    case status.CANCELLED:
      return "unavailable";
    case status.DEADLINE_EXCEEDED:
      return "deadline";
    case status.FAILED_PRECONDITION:
      return "failed-precondition";
    case status.UNAUTHENTICATED:
      return "unauthenticated";
    case status.PERMISSION_DENIED:
      return "permission-denied";
    default:
      return "internal";
  }
}

/** A DispenserError for a failed gRPC call to `endpoint`. */
export function fromServiceError(e: ServiceError, endpoint: string): DispenserError {
  const detail = errorDetailOf(e);
  const code = codeOf(e.code, detail?.reason);
  const text = e.details !== "" ? e.details : e.message;
  return new DispenserError(code, `${endpoint}: ${text}`, {
    grpcCode: e.code,
    endpoint,
    ...(detail !== undefined ? { reason: detail.reason } : {}),
    ...(detail !== undefined && detail.field !== "" ? { field: detail.field } : {}),
  });
}

/**
 * Whether the failure says "this edge cannot serve now, another one (or a later try) may": the
 * edge is down or draining, it timed out, or it sheds load. Nothing was issued to this client.
 */
export function isRetryable(e: DispenserError): boolean {
  return e.code === "unavailable" || e.code === "deadline" || e.code === "overloaded";
}
