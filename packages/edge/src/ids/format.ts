// The text of an id: [prefix][date stamp][number], e.g. ORD00000001 or 20250909000001, and the way
// back. Pure: the date stamp comes from a time passed in (UTC); when the counter resets each day is
// for the ledger and the edge to decide. The number is decimal, zero-padded to `width` when a width
// is set (types 1 and 2 pass their length, so their ids are exactly that wide anyway).
//
// Every id has exactly one text and every text at most one id: with a width the number must have
// exactly `width` digits; without one it has no leading zeros. So parseFormatted(formatId(x)) = x
// and a text that formatId() could not have produced is refused with the reason.

export const DATE_FORMATS = ["YYYYMMDD", "YYMMDD"] as const;
export type DateFormat = (typeof DATE_FORMATS)[number];

export const PREFIX_PATTERN = /^[A-Za-z0-9_.:-]{1,32}$/;
/** Digits of the largest id, 2^63 - 1. */
export const MAX_ID_DIGITS = 19;

export interface IdFormatOptions {
  /** Literal text before the id, 1..32 characters of A-Z a-z 0-9 _ . : -, matched case-sensitively. */
  readonly prefix?: string;
  /** Digits the number is zero-padded to, 1..19; types 1 and 2 use their length. Unset: no padding. */
  readonly width?: number;
  /** A UTC date stamp between prefix and number; YYMMDD covers the years 2000..2099. */
  readonly date?: DateFormat;
}

export interface FormatOptionError {
  readonly field: string;
  readonly reason: string;
}

export type FormattedParse =
  | {
      readonly ok: true;
      readonly id: bigint;
      /** With a date format: the stamp's day as the epoch milliseconds of its UTC midnight. */
      readonly dayMs?: number;
    }
  | { readonly ok: false; readonly reason: string };

const MS_PER_DAY = 86_400_000;
/** 10000-01-01T00:00:00Z: four-digit years end here. */
const YEAR_10000_MS = 253_402_300_800_000;
/** 2000-01-01 and 2100-01-01, the range of a two-digit year. */
const YEAR_2000_MS = 946_684_800_000;
const YEAR_2100_MS = 4_102_444_800_000;

const INT64_MAX = (1n << 63n) - 1n;
/** Below this, a Number prints faster than a bigint (see idToDecimal). */
const SMALL_MAX = 0x7fff_ffffn;

/**
 * The decimal text of an id in 0..2^63-1, the same as id.toString(). Measured on Node 20 (see
 * test/bench/micro/id-format.ts): ids up to 2^31-1 print up to twice as fast through a Number (V8's small
 * integer path); from there to 2^53 a Number prints 2-4 times slower than the bigint itself
 * (shortest round-trip double printing), and splitting larger ids at 10^9 into two Numbers is
 * no faster than toString(). So only the small range takes the Number path.
 */
export function idToDecimal(id: bigint): string {
  if (id >= 0n && id <= SMALL_MAX) return String(Number(id));
  if (id < 0n || id > INT64_MAX) throw new RangeError(`id ${id} is outside 0..2^63-1`);
  return id.toString();
}

/** The problems with a set of format options; empty when valid. */
export function validateIdFormatOptions(options: IdFormatOptions): FormatOptionError[] {
  const errors: FormatOptionError[] = [];
  const { prefix, width, date } = options;
  if (prefix !== undefined && (typeof prefix !== "string" || !PREFIX_PATTERN.test(prefix))) {
    errors.push({ field: "prefix", reason: "prefix must be 1..32 characters of A-Z a-z 0-9 _ . : -" });
  }
  if (width !== undefined && (!Number.isInteger(width) || width < 1 || width > MAX_ID_DIGITS)) {
    errors.push({ field: "width", reason: `width must be between 1 and ${MAX_ID_DIGITS}` });
  }
  if (date !== undefined && !DATE_FORMATS.includes(date)) {
    errors.push({ field: "date", reason: `date must be one of ${DATE_FORMATS.join(", ")}` });
  }
  return errors;
}

/** One validated format: formatId() and parseFormatted() are inverses. */
export class IdFormat {
  readonly prefix: string;
  readonly width: number | undefined;
  readonly date: DateFormat | undefined;
  /** Digits of the date stamp: 8, 6 or 0. */
  private readonly dateDigits: number;
  /** The longest text this format produces; longer input is refused before any other work. */
  private readonly textLengthMax: number;
  /** The largest id that fits the width (10^width - 1), or 2^63 - 1. */
  private readonly idMax: bigint;
  /** The last day formatted and its stamp: ids are formatted in bursts within one day. */
  private cachedDay = -1;
  private cachedStamp = "";

  constructor(options: IdFormatOptions = {}) {
    const errors = validateIdFormatOptions(options);
    if (errors.length > 0) throw new RangeError(errors.map((e) => e.reason).join("; "));
    this.prefix = options.prefix ?? "";
    this.width = options.width;
    this.date = options.date;
    this.dateDigits = options.date === undefined ? 0 : options.date.length;
    this.textLengthMax = this.prefix.length + this.dateDigits + (this.width ?? MAX_ID_DIGITS);
    const widthMax = this.width === undefined ? INT64_MAX : 10n ** BigInt(this.width) - 1n;
    this.idMax = widthMax < INT64_MAX ? widthMax : INT64_MAX;
  }

  /**
   * The text of an id. `atMs` (epoch milliseconds, read as UTC) picks the date stamp and is
   * required exactly when the format has one. An id or time the format cannot express is a
   * programmer error (RangeError): the sequence's definition bounds its ids.
   */
  formatId(id: bigint, atMs?: number): string {
    if (typeof id !== "bigint" || id < 0n || id > this.idMax) {
      throw new RangeError(`id ${String(id)} is outside 0..${this.idMax} of this format`);
    }
    let number = idToDecimal(id);
    if (this.width !== undefined && number.length < this.width) number = number.padStart(this.width, "0");
    if (this.date === undefined) return this.prefix + number;
    if (atMs === undefined) throw new RangeError(`format with date ${this.date} needs a time`);
    return this.prefix + this.stamp(atMs) + number;
  }

  /** The id in a text, or why the text cannot come from this format. */
  parseFormatted(text: string): FormattedParse {
    if (typeof text !== "string" || text.length === 0) return fail("text is empty");
    if (text.length > this.textLengthMax) {
      return fail(`text has ${text.length} characters, more than the ${this.textLengthMax} of this format`);
    }
    if (!text.startsWith(this.prefix)) return fail(`text does not start with the prefix "${this.prefix}"`);
    let at = this.prefix.length;
    let dayMs: number | undefined;
    if (this.date !== undefined) {
      const stamp = text.slice(at, at + this.dateDigits);
      const day = parseStamp(stamp, this.date);
      if (typeof day === "string") return fail(day);
      dayMs = day;
      at += this.dateDigits;
    }
    const digits = text.slice(at);
    if (digits.length === 0) return fail("text has no number after its prefix and date");
    if (!isDigits(digits)) return fail(`"${digits}" is not a decimal number`);
    if (this.width !== undefined) {
      if (digits.length !== this.width) {
        return fail(
          `the number "${digits}" has ${digits.length} digits; this format has exactly ${this.width}`,
        );
      }
    } else if (digits.length > 1 && digits.startsWith("0")) {
      return fail(`the number "${digits}" has a leading zero`);
    }
    const id = BigInt(digits);
    if (id > this.idMax) return fail(`the number ${digits} is above the largest id, ${this.idMax}`);
    return dayMs === undefined ? { ok: true, id } : { ok: true, id, dayMs };
  }

  private stamp(atMs: number): string {
    const [fromMs, toMs] = this.date === "YYMMDD" ? [YEAR_2000_MS, YEAR_2100_MS] : [0, YEAR_10000_MS];
    if (!Number.isSafeInteger(atMs) || atMs < fromMs || atMs >= toMs) {
      throw new RangeError(`time ${atMs} ms is outside the years the ${this.date} date format covers`);
    }
    const day = Math.floor(atMs / MS_PER_DAY);
    if (day === this.cachedDay) return this.cachedStamp;
    const d = new Date(day * MS_PER_DAY);
    const yyyy = String(d.getUTCFullYear()).padStart(4, "0");
    const mm = String(d.getUTCMonth() + 1).padStart(2, "0");
    const dd = String(d.getUTCDate()).padStart(2, "0");
    this.cachedStamp = (this.date === "YYMMDD" ? yyyy.slice(2) : yyyy) + mm + dd;
    this.cachedDay = day;
    return this.cachedStamp;
  }
}

function fail(reason: string): FormattedParse {
  return { ok: false, reason };
}

/** ASCII digits only: other Unicode digits never appear in a formatted id. */
function isDigits(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** The UTC midnight of a stamp, in epoch ms, or why it is not a date this format produces. */
function parseStamp(stamp: string, format: DateFormat): number | string {
  if (stamp.length !== format.length || !isDigits(stamp)) {
    return `text has no ${format} date stamp where one belongs`;
  }
  const year = format === "YYMMDD" ? 2000 + Number(stamp.slice(0, 2)) : Number(stamp.slice(0, 4));
  const rest = format === "YYMMDD" ? stamp.slice(2) : stamp.slice(4);
  const month = Number(rest.slice(0, 2));
  const day = Number(rest.slice(2, 4));
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day); // also right for years below 100, unlike Date.UTC
  const ms = d.getTime();
  if (year < 1970 || d.getUTCFullYear() !== year || d.getUTCMonth() !== month - 1 || d.getUTCDate() !== day) {
    return `date stamp ${stamp} is not a ${format} date from 1970 on`;
  }
  return ms;
}
