// Checks of user input shared by the gRPC and RESP layers, so both refuse the same things the same
// way before anything is drawn.
import { SEQUENCE_NAME_PATTERN, SEQUENCE_NAME_RULE } from "@dispenser/domain";
import { EdgeError } from "../errors.js";

const DECIMAL = /^[0-9]{1,20}$/;
const UINT64_MAX = (1n << 64n) - 1n;

export function checkSequenceName(name: string): void {
  if (!SEQUENCE_NAME_PATTERN.test(name))
    throw new EdgeError("invalid-argument", `sequence name must be ${SEQUENCE_NAME_RULE}`, "sequence");
}

/** A decimal id (leading zeros allowed, as fixed-length ids print them). */
export function parseIdText(text: string): bigint {
  if (!DECIMAL.test(text))
    throw new EdgeError("invalid-argument", `"${text.slice(0, 40)}" is not a decimal id`, "id");
  const v = BigInt(text);
  if (v > UINT64_MAX) throw new EdgeError("invalid-argument", `${text} is above 2^64-1`, "id");
  return v;
}

/** A positive decimal integer argument within [1, max]. */
export function parseCount(text: string, max: number, field = "count"): number {
  if (!/^[0-9]{1,10}$/.test(text))
    throw new EdgeError("invalid-argument", `${field} must be an integer 1..${max}`, field);
  const n = Number(text);
  if (n < 1 || n > max) throw new EdgeError("invalid-argument", `${field} must be 1..${max}`, field);
  return n;
}
