// Canonical JSON for commands and snapshots: object keys sorted, bigints as decimal strings, so one
// value always encodes to the same bytes on every replica. The readers check decoded input field by
// field and throw DecodeError, which the public decoders turn into an error result.

export type Json = null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json };

export class DecodeError extends Error {
  override readonly name = "DecodeError";
}

export function canonicalJson(value: Json): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${(value as readonly Json[]).map(canonicalJson).join(",")}]`;
  const obj = value as { readonly [key: string]: Json };
  const keys = Object.keys(obj).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k] ?? null)}`).join(",")}}`;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}

/** Parses UTF-8 JSON; invalid UTF-8 or JSON becomes a DecodeError. */
export function parseJson(bytes: Uint8Array, what: string): unknown {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw new DecodeError(`${what} is not valid UTF-8`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new DecodeError(`${what} is not valid JSON`);
  }
}

export type Fields = Readonly<Record<string, unknown>>;

/** An object with exactly the required keys plus any of the optional ones. */
export function readObject(
  v: unknown,
  path: string,
  required: readonly string[],
  optional: readonly string[] = [],
): Fields {
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw new DecodeError(`${path} must be an object`);
  for (const k of Object.keys(v)) {
    if (!required.includes(k) && !optional.includes(k))
      throw new DecodeError(`${path} has an unknown field "${k}"`);
  }
  for (const k of required) {
    if (!Object.prototype.hasOwnProperty.call(v, k)) throw new DecodeError(`${path}.${k} is missing`);
  }
  return v as Fields;
}

export function readArray(v: unknown, path: string, maxItems: number): readonly unknown[] {
  if (!Array.isArray(v)) throw new DecodeError(`${path} must be an array`);
  if (v.length > maxItems) throw new DecodeError(`${path} has ${v.length} items, more than ${maxItems}`);
  return v as readonly unknown[];
}

export function readString(v: unknown, path: string, maxChars: number): string {
  if (typeof v !== "string") throw new DecodeError(`${path} must be a string`);
  if (v.length > maxChars) throw new DecodeError(`${path} is longer than ${maxChars} characters`);
  return v;
}

export function readInt(v: unknown, path: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v))
    throw new DecodeError(`${path} must be a safe integer`);
  return v;
}

export function readBool(v: unknown, path: string): boolean {
  if (typeof v !== "boolean") throw new DecodeError(`${path} must be a boolean`);
  return v;
}

const DECIMAL = /^-?(0|[1-9][0-9]{0,19})$/;

/** A bigint written as a canonical decimal string of at most 20 digits (ranges are checked later). */
export function readBigint(v: unknown, path: string): bigint {
  if (typeof v !== "string" || !DECIMAL.test(v) || v === "-0") {
    throw new DecodeError(`${path} must be a decimal integer string`);
  }
  return BigInt(v);
}

export function bigJson(b: bigint): string {
  return b.toString();
}
