// Ids as text and back. Ids are bigint end to end; these never go through a lossy number.

const DECIMAL = /^[0-9]{1,20}$/;
const UINT64_MAX = (1n << 64n) - 1n;

/**
 * The id as decimal text, zero-padded to `length` digits (the sequence's length for types 1 and
 * 2; 0 or leave it out for type 3). The same text the edge puts in Id.str.
 */
export function toIdString(id: bigint, length = 0): string {
  const s = id.toString();
  return s.length >= length ? s : s.padStart(length, "0");
}

/** The id a decimal text stands for (leading zeros allowed); undefined when it is not a uint64. */
export function parseIdString(text: string): bigint | undefined {
  if (!DECIMAL.test(text)) return undefined;
  const v = BigInt(text);
  return v <= UINT64_MAX ? v : undefined;
}
