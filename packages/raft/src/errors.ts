// Errors of the storage contract (operating conditions the core handles), and the assertion
// helper for programmer errors (broken invariants, which must crash).

export class StorageError extends Error {
  constructor(
    readonly code: "compacted" | "unavailable" | "snapshot-out-of-date" | "snapshot-temporarily-unavailable",
    message: string,
  ) {
    super(message);
    this.name = "StorageError";
  }
}

export const errCompacted = (): StorageError =>
  new StorageError("compacted", "requested index is unavailable due to compaction");
export const errUnavailable = (): StorageError =>
  new StorageError("unavailable", "requested entry at index is unavailable");
export const errSnapOutOfDate = (): StorageError =>
  new StorageError("snapshot-out-of-date", "requested index is older than the existing snapshot");
export const errSnapshotTemporarilyUnavailable = (): StorageError =>
  new StorageError("snapshot-temporarily-unavailable", "snapshot is temporarily unavailable");

export function isStorageError(e: unknown, code: StorageError["code"]): boolean {
  return e instanceof StorageError && e.code === code;
}

/** A broken invariant: the process must stop rather than continue with corrupt state. */
export class AssertionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RaftAssertionError";
  }
}

export function assert(condition: boolean, message: string | (() => string)): asserts condition {
  if (!condition) throw new AssertionError(typeof message === "string" ? message : message());
}
