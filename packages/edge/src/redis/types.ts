/** Stable codes of `RedisPlaneError`. */
export type RedisPlaneErrorCode =
  /** Rejected before anything was sent: a bad name, dc, edge id, count or field. */
  | "invalid-argument"
  /** No answer within the call's deadline. The command may still run. */
  | "timeout"
  /** No node could take the call (connection lost, failover in progress). It may have run. */
  | "unavailable"
  /** A bound was hit: too many edges in one dc, or a counter would pass int64. Nothing changed. */
  | "limit-exceeded"
  /** Redis answered with something the plane never writes. */
  | "bad-reply"
  /** Any other error reply from Redis. */
  | "redis-error";

/** Outcome of a revision-guarded write (mirror or delete). */
export interface MirrorOutcome {
  /** False when the stored revision was newer (or, for a mirror, equal): nothing was written. */
  readonly applied: boolean;
  /** The revision stored once the call is done. */
  readonly revision: bigint;
}

/** A sequence definition as mirrored from the ledger's catalog. */
export interface MirroredDefinition {
  /** The catalog's fields as strings, `name` among them; `revision` is not a field. */
  readonly fields: Readonly<Record<string, string>>;
  readonly revision: bigint;
}

/** One edge's counters after a report. */
export interface EdgeTotals {
  readonly generated: bigint;
  readonly wasted: bigint;
  /** The latest report time seen for this edge (ms since the epoch, as the edges stamp it). */
  readonly seenMs: number;
}

/** Counters of one (sequence, dc), summed over its edges. */
export interface DcStats {
  readonly generated: bigint;
  readonly wasted: bigint;
  /** Edges that ever reported. */
  readonly edges: number;
  /** Edges whose last report lies within the window that was asked for. */
  readonly edgesSeen: number;
}

/** What the DC's edges remember of the ledger for one (sequence, dc). */
export interface DcGuard {
  /** The first ledger identity an edge wrote ("" before any). */
  readonly identity: string;
  /** The highest issued mark (one past the highest counter value issued) any edge wrote. */
  readonly mark: bigint;
}
