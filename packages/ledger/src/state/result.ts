// The outcome of applying a command. Codes are stable: the gRPC layer maps them to status codes
// (invalid-argument → INVALID_ARGUMENT, not-found → NOT_FOUND, already-exists → ALREADY_EXISTS,
// exhausted → RESOURCE_EXHAUSTED, failed-precondition → FAILED_PRECONDITION, aborted → ABORTED).

export type ErrorCode =
  "invalid-argument" | "not-found" | "already-exists" | "exhausted" | "failed-precondition" | "aborted";

export interface Failure {
  readonly ok: false;
  readonly code: ErrorCode;
  readonly message: string;
}

export type Result<T> = { readonly ok: true; readonly data: T } | Failure;

export function ok<T>(data: T): Result<T> {
  return { ok: true, data };
}

export function fail(code: ErrorCode, message: string): Failure {
  return { ok: false, code, message };
}
