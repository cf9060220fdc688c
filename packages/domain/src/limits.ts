// Every limit of the sequence model, stated once: the ledger validates against these, and the edge,
// the client, the CLI and the Redis plane check their input against the same values.

/** Sequences hold 1..MAX_DATACENTERS datacenters, numbered 0..MAX_DATACENTERS-1. */
export const MAX_DATACENTERS = 1024;
/** Digits of a fixed-length (type 1 or 2) id. */
export const MAX_LENGTH = 18;
/** The `limits.max_segment_size` of a sequence that names none, in counter values. */
export const DEFAULT_MAX_SEGMENT_SIZE = 1_000_000n;
/** The largest `limits.max_segment_size` a sequence may name (and so the largest lease). */
export const MAX_SEGMENT_SIZE = 100_000_000n;
/** The longest reserve a DC's pool may hold for a sequence, in seconds of its draw rate (a day). */
export const MAX_RESERVE_SECONDS = 86_400;

/** The sequence name rule, everywhere a name is taken. */
export const SEQUENCE_NAME_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;
export const SEQUENCE_NAME_RULE = "1..64 characters of A-Z a-z 0-9 _ . : -";

/** Why `name` is not a sequence name, or undefined when it is one. */
export function sequenceNameError(name: unknown): string | undefined {
  return typeof name === "string" && SEQUENCE_NAME_PATTERN.test(name)
    ? undefined
    : `sequence name must be ${SEQUENCE_NAME_RULE}, got ${JSON.stringify(typeof name === "string" ? name.slice(0, 80) : name)}`;
}
