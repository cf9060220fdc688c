// A push parser for Redis requests: the server feeds socket chunks in and pulls one command at a time
// out, so it can stop pulling at its pipeline depth limit. No socket inside, never throws on input.
//
// Arguments come out as latin1 strings: one char per byte, so they are binary-safe (the encoder writes
// them back with latin1) and cheap to compare against command names.
//
// Input is parsed in place from the chunk it arrived in. Only an item (a header line, a bulk argument,
// an inline line) split across chunks is copied, into a private buffer, together with just the bytes of
// the next chunk that complete it; parsing then goes on in that chunk. (A chunk fed while commands wait
// to be pulled is copied whole.) Multibulk commands are parsed item by item, so a long command arriving
// in many chunks is never re-scanned.
//
// Where Redis has an error text for a malformed request it is used here. A malformed frame is fatal:
// the stream cannot be resynchronised, so the server answers the error and closes. The outcome never
// depends on how the input was split into chunks.

/** Limits on what one connection may send; each bounds memory the parser holds. */
export interface RespLimits {
  /** Largest bulk argument, in bytes. Default 512 KiB: sequence names and ECHO payloads are small. */
  maxBulkBytes: number;
  /** Most arguments in one multibulk command, its name included. Default 10_001: `MGET` of 10,000 names. */
  maxArgs: number;
  /** Longest inline command line, in bytes, not counting its line ending. Default 64 KiB, as Redis. */
  maxInlineBytes: number;
  /**
   * Most bytes one multibulk command may span (headers and arguments), and most unread input the parser
   * holds: feeding more while more than this waits to be pulled is a fatal error, so the server must stop
   * reading the socket while it is not pulling. Default 1 MiB. Must exceed maxInlineBytes by 64 or more.
   */
  maxBufferedBytes: number;
}

export const DEFAULT_RESP_LIMITS: Readonly<RespLimits> = Object.freeze({
  maxBulkBytes: 512 * 1024,
  maxArgs: 10_001,
  maxInlineBytes: 64 * 1024,
  maxBufferedBytes: 1024 * 1024,
});

/** A parsed command, or a protocol error to answer; after a fatal one the connection must close. */
export type ParseEvent =
  { kind: "command"; args: string[] } | { kind: "error"; message: string; fatal: boolean };

const CR = 13;
const LF = 10;
const STAR = 42;
const DOLLAR = 36;
const MINUS = 45;
const ZERO = 48;
const ONE = 49;
const NINE = 57;

// Redis's string2ll takes at most 20 chars ("-9223372036854775808"); a longer length is invalid.
const MAX_NUMBER_CHARS = 20;
// A private buffer bigger than this is dropped once drained, so an idle connection holds little.
const KEEP_BYTES = 64 * 1024;
const MIN_ALLOC_BYTES = 1024;
const EMPTY = Buffer.alloc(0);

const BAD_MULTIBULK_LENGTH = "ERR Protocol error: invalid multibulk length";
const BAD_BULK_LENGTH = "ERR Protocol error: invalid bulk length";
const NO_CRLF_AFTER_BULK = "ERR Protocol error: expected CRLF after bulk argument";
const TOO_BIG_INLINE = "ERR Protocol error: too big inline request";
const TOO_BIG_REQUEST = "ERR Protocol error: too big request";
const TOO_MUCH_UNREAD = "ERR Protocol error: too much unread input";
const UNBALANCED_QUOTES = "ERR Protocol error: unbalanced quotes in request";

export class RespParser {
  private readonly maxBulkBytes: number;
  private readonly maxArgs: number;
  private readonly maxInlineBytes: number;
  private readonly maxBufferedBytes: number;

  // Unread input is buf[pos..], then queued. buf is either a fed chunk or a view of acc.
  private buf: Buffer = EMPTY;
  private pos = 0;
  private queued: Buffer | undefined;
  private acc: Buffer = EMPTY;
  private bufInAcc = false;
  /** Bytes after pos known to hold no LF: an inline line still arriving is not re-scanned. */
  private scanned = 0;
  /** next() ran out of input inside the item at pos, so a new chunk only has to complete that item. */
  private starved = false;
  private overflowed = false;
  private dead = false;

  // The multibulk command in progress.
  private argsLeft = 0;
  private args: string[] = [];
  /** Length of the bulk argument at pos, or -1 when its `$` header comes next. */
  private bulkLen = -1;
  private frameBytes = 0;

  constructor(limits: Partial<RespLimits> = {}) {
    const l = { ...DEFAULT_RESP_LIMITS, ...limits };
    for (const [k, v] of Object.entries(l)) {
      if (!Number.isSafeInteger(v) || v < 1)
        throw new RangeError(`RespLimits.${k} must be a positive integer`);
    }
    if (l.maxBufferedBytes < l.maxInlineBytes + 64) {
      throw new RangeError("RespLimits.maxBufferedBytes must exceed maxInlineBytes by 64 or more");
    }
    this.maxBulkBytes = l.maxBulkBytes;
    this.maxArgs = l.maxArgs;
    this.maxInlineBytes = l.maxInlineBytes;
    this.maxBufferedBytes = l.maxBufferedBytes;
  }

  /** Input bytes held and not yet returned by next(), excluding decoded arguments of a partial command. */
  get bufferedBytes(): number {
    return this.buf.length - this.pos + (this.queued?.length ?? 0);
  }

  /** Whether input of a command not yet complete is held: raw bytes, or arguments decoded so far. */
  get midCommand(): boolean {
    return this.bufferedBytes > 0 || this.argsLeft > 0 || this.args.length > 0;
  }

  /**
   * Hands the parser a chunk of input. The parser may keep a reference to it until it has been parsed,
   * so the caller must not modify it afterwards (socket chunks are never reused).
   */
  feed(chunk: Buffer): void {
    if (this.dead || this.overflowed || chunk.length === 0) return;
    const held = this.bufferedBytes;
    if (held === 0) {
      // The common case: everything before was parsed, so parse this chunk where it is.
      if (this.acc.length > KEEP_BYTES) this.acc = EMPTY;
      this.buf = chunk;
      this.pos = 0;
      this.bufInAcc = false;
      this.scanned = 0;
      this.starved = false;
      return;
    }
    if (held > this.maxBufferedBytes) {
      // Reported by next() once it has returned what it holds; nothing more is read.
      this.overflowed = true;
      return;
    }
    if (this.starved) {
      const k = this.restOfItem(chunk);
      this.append(k === chunk.length ? chunk : chunk.subarray(0, k));
      if (k < chunk.length) this.queued = chunk.subarray(k);
    } else {
      // Commands are waiting to be pulled: keep everything, in order.
      const q = this.queued;
      this.queued = undefined;
      if (q !== undefined) this.append(q);
      this.append(chunk);
    }
    this.starved = false;
  }

  /** The next command or error, or undefined when more input is needed (or after a fatal error). */
  next(): ParseEvent | undefined {
    while (!this.dead) {
      if (this.pos === this.buf.length) {
        if (this.queued === undefined) return this.starve();
        this.useQueued();
        continue;
      }
      let ev: ParseEvent | undefined | null;
      if (this.argsLeft > 0) ev = this.bulks();
      else if (this.buf[this.pos] === STAR) ev = this.multibulkHeader();
      else ev = this.inline();
      if (ev === null) continue; // an empty line or *0: nothing to run
      if (ev !== undefined) return ev;
      // The item at pos is incomplete.
      if (this.queued === undefined) return this.starve();
      if (this.pos === this.buf.length) this.useQueued();
      else {
        const q = this.queued;
        this.queued = undefined;
        this.append(q);
      }
    }
    return undefined;
  }

  private starve(): ParseEvent | undefined {
    if (this.overflowed) return this.fail(TOO_MUCH_UNREAD);
    this.starved = true;
    return undefined;
  }

  private fail(message: string): ParseEvent {
    this.dead = true;
    this.buf = EMPTY;
    this.pos = 0;
    this.queued = undefined;
    this.acc = EMPTY;
    this.args = [];
    return { kind: "error", message, fatal: true };
  }

  /** `*<n>\r\n`: starts a command, or is skipped when n <= 0 as Redis does. */
  private multibulkHeader(): ParseEvent | undefined | null {
    const buf = this.buf;
    const len = buf.length;
    const pos = this.pos;
    const cr = findCR(buf, pos + 1, len);
    if (cr < 0) return len - pos - 1 > MAX_NUMBER_CHARS ? this.fail(BAD_MULTIBULK_LENGTH) : undefined;
    if (cr + 1 >= len) return undefined;
    if (buf[cr + 1] !== LF) return this.fail(BAD_MULTIBULK_LENGTH);
    const n = parseLength(buf, pos + 1, cr);
    if (!(n <= this.maxArgs)) return this.fail(BAD_MULTIBULK_LENGTH);
    this.pos = cr + 2;
    if (n <= 0) return null;
    this.argsLeft = n;
    this.args = [];
    this.bulkLen = -1;
    this.frameBytes = cr + 2 - pos;
    return this.bulks();
  }

  /** The `$<len>\r\n<bytes>\r\n` arguments of the command in progress; the hot path. */
  private bulks(): ParseEvent | undefined {
    const buf = this.buf;
    const len = buf.length;
    const args = this.args;
    let pos = this.pos;
    let left = this.argsLeft;
    let bulkLen = this.bulkLen;
    let frameBytes = this.frameBytes;
    while (left > 0) {
      if (bulkLen < 0) {
        if (pos >= len) break;
        const c = buf[pos]!;
        if (c !== DOLLAR) return this.fail(`ERR Protocol error: expected '$', got '${shown(c)}'`);
        const cr = findCR(buf, pos + 1, len);
        if (cr < 0) {
          if (len - pos - 1 > MAX_NUMBER_CHARS) return this.fail(BAD_BULK_LENGTH);
          break;
        }
        if (cr + 1 >= len) break;
        if (buf[cr + 1] !== LF) return this.fail(BAD_BULK_LENGTH);
        const n = parseLength(buf, pos + 1, cr);
        if (!(n >= 0 && n <= this.maxBulkBytes)) return this.fail(BAD_BULK_LENGTH);
        frameBytes += cr + 2 - pos;
        // Checked here, where the size is known, so the outcome does not depend on chunking.
        if (frameBytes + n + 2 > this.maxBufferedBytes) return this.fail(TOO_BIG_REQUEST);
        pos = cr + 2;
        bulkLen = n;
      }
      const stop = pos + bulkLen;
      if (stop + 2 > len) break;
      if (buf[stop] !== CR || buf[stop + 1] !== LF) return this.fail(NO_CRLF_AFTER_BULK);
      args.push(latin1(buf, pos, stop));
      frameBytes += bulkLen + 2;
      pos = stop + 2;
      bulkLen = -1;
      left--;
    }
    this.pos = pos;
    this.argsLeft = left;
    if (left === 0) return { kind: "command", args };
    this.bulkLen = bulkLen;
    this.frameBytes = frameBytes;
    return undefined;
  }

  /** A line of space-separated arguments, as typed into telnet. */
  private inline(): ParseEvent | undefined | null {
    const buf = this.buf;
    const len = buf.length;
    const pos = this.pos;
    const lf = buf.indexOf(LF, pos + this.scanned);
    if (lf < 0) {
      const pending = len - pos;
      // A trailing CR may be the start of the line ending, so it does not count yet.
      if (pending - (buf[len - 1] === CR ? 1 : 0) > this.maxInlineBytes) return this.fail(TOO_BIG_INLINE);
      this.scanned = pending;
      return undefined;
    }
    this.scanned = 0;
    const stop = lf > pos && buf[lf - 1] === CR ? lf - 1 : lf;
    if (stop - pos > this.maxInlineBytes) return this.fail(TOO_BIG_INLINE);
    this.pos = lf + 1;
    const args = splitArgs(buf, pos, stop);
    if (args === undefined) return { kind: "error", message: UNBALANCED_QUOTES, fatal: false };
    return args.length === 0 ? null : { kind: "command", args };
  }

  /** How many leading bytes of chunk complete the item at pos (all of chunk if it does not). */
  private restOfItem(chunk: Buffer): number {
    if (this.argsLeft > 0 && this.bulkLen >= 0) {
      return Math.min(chunk.length, this.bulkLen + 2 - (this.buf.length - this.pos));
    }
    // A header or inline line: it ends at the next LF.
    const lf = chunk.indexOf(LF);
    return lf < 0 ? chunk.length : lf + 1;
  }

  /** Appends src after the unread input, moving that input into acc first. */
  private append(src: Buffer): void {
    const have = this.buf.length - this.pos;
    const need = have + src.length;
    let acc = this.acc;
    if (this.bufInAcc && this.pos + need <= acc.length) {
      // Room after the unread input.
    } else if (this.bufInAcc && need <= acc.length) {
      acc.copyWithin(0, this.pos, this.buf.length);
      this.pos = 0;
    } else {
      if (need > acc.length) acc = Buffer.allocUnsafe(Math.max(need, acc.length * 2, MIN_ALLOC_BYTES));
      this.buf.copy(acc, 0, this.pos);
      this.pos = 0;
      this.acc = acc;
      this.bufInAcc = true;
    }
    const end = this.pos + have;
    src.copy(acc, end);
    this.buf = acc.subarray(0, end + src.length);
  }

  private useQueued(): void {
    this.buf = this.queued ?? EMPTY;
    this.queued = undefined;
    this.pos = 0;
    this.bufInAcc = false;
    this.scanned = 0;
    if (this.acc.length > KEEP_BYTES) this.acc = EMPTY;
  }
}

// Recently decoded short arguments, reused when the same bytes come again: command names and sequence
// names repeat on every request, and decoding through Buffer#toString costs a native call. A slot is
// overwritten on collision, so the cache stays this small whatever the input.
const INTERN_MAX_CHARS = 32;
const INTERN_SLOTS = 4096;
const interned: string[] = new Array<string>(INTERN_SLOTS).fill("");

/** buf[start..end) as a latin1 string. */
function latin1(buf: Buffer, start: number, end: number): string {
  const n = end - start;
  if (n > INTERN_MAX_CHARS || n === 0) return n === 0 ? "" : buf.toString("latin1", start, end);
  let h = 0x811c9dc5; // FNV-1a
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  const slot = (h >>> 0) % INTERN_SLOTS;
  const s = interned[slot]!;
  if (s.length === n) {
    let i = 0;
    while (i < n && s.charCodeAt(i) === buf[start + i]) i++;
    if (i === n) return s;
  }
  const fresh = buf.toString("latin1", start, end);
  interned[slot] = fresh;
  return fresh;
}

/** The first CR in buf[from..len), looking no further than a length can be; -1 if none. */
function findCR(buf: Buffer, from: number, len: number): number {
  const lim = Math.min(len, from + MAX_NUMBER_CHARS + 1);
  for (let i = from; i < lim; i++) if (buf[i] === CR) return i;
  return -1;
}

/**
 * A length as Redis's string2ll reads it: an optional `-`, then `0` or digits without a leading zero,
 * within int64. NaN if invalid. Values beyond 2^53 are approximate, which is fine: they are only ever
 * compared with limits far below that, or skipped as negative.
 */
function parseLength(buf: Buffer, start: number, end: number): number {
  let i = start;
  const neg = buf[i] === MINUS;
  if (neg) i++;
  if (i >= end) return NaN;
  let c = buf[i]!;
  if (c === ZERO) return i + 1 === end && !neg ? 0 : NaN;
  if (c < ONE || c > NINE) return NaN;
  let v = c - ZERO;
  for (i++; i < end; i++) {
    c = buf[i]!;
    if (c < ZERO || c > NINE) return NaN;
    v = v * 10 + (c - ZERO);
  }
  if (v > Number.MAX_SAFE_INTEGER) {
    const big = BigInt(buf.toString("latin1", start, end));
    if (big > 0x7fff_ffff_ffff_ffffn || big < -0x8000_0000_0000_0000n) return NaN;
  }
  return neg ? -v : v;
}

/** A byte as Redis prints it in an error: CR and LF become spaces so the reply stays one line. */
function shown(c: number): string {
  return c === CR || c === LF ? " " : String.fromCharCode(c);
}

// C's isspace: the blanks Redis skips between inline arguments.
function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

const BACKSLASH = 92;
const DQUOTE = 34;
const SQUOTE = 39;

let scratch = Buffer.allocUnsafe(256);

/**
 * Splits an inline line as Redis's sdssplitargs does: blanks separate arguments; "double quotes" take
 * \xHH and \n \r \t \b \a escapes (any other escaped char stands for itself); 'single quotes' take only
 * \'; a closing quote must be followed by a blank or the end. A NUL ends the line, as in C.
 * Undefined when the quotes are unbalanced.
 */
function splitArgs(buf: Buffer, start: number, stop: number): string[] | undefined {
  let quoted = false;
  for (let i = start; i < stop; i++) {
    const c = buf[i]!;
    if (c === 0) {
      stop = i;
      break;
    }
    if (c === DQUOTE || c === SQUOTE) quoted = true;
  }
  if (quoted) return splitQuoted(buf, start, stop);
  const args: string[] = [];
  for (let p = start; ;) {
    while (p < stop && isSpace(buf[p]!)) p++;
    if (p >= stop) return args;
    const from = p;
    while (p < stop && !endsWord(buf[p]!)) p++;
    args.push(latin1(buf, from, p));
  }
}

/** What ends an unquoted argument; fewer than isSpace, so \v and \f inside one are kept, as in Redis. */
function endsWord(c: number): boolean {
  return c === 32 || c === LF || c === CR || c === 9;
}

/** 0 past the end, like the NUL that ends a C string. */
function byteAt(buf: Buffer, i: number, stop: number): number {
  return i < stop ? buf[i]! : 0;
}

/** Two hex digits at i: a \xHH escape. */
function isHexAt(buf: Buffer, i: number, stop: number): boolean {
  return hexValue(byteAt(buf, i, stop)) >= 0 && hexValue(byteAt(buf, i + 1, stop)) >= 0;
}

function escaped(c: number): number {
  switch (c) {
    case 110: // \n
      return LF;
    case 114: // \r
      return CR;
    case 116: // \t
      return 9;
    case 98: // \b
      return 8;
    case 97: // \a
      return 7;
    default:
      return c;
  }
}

/** splitArgs for a line with quotes, a port of sdssplitargs. */
function splitQuoted(buf: Buffer, start: number, stop: number): string[] | undefined {
  if (scratch.length < stop - start) scratch = Buffer.allocUnsafe(Math.max(stop - start, scratch.length * 2));
  const out = scratch;
  const args: string[] = [];
  let p = start;
  for (;;) {
    while (p < stop && isSpace(buf[p]!)) p++;
    if (p >= stop) return args;
    let inDouble = false;
    let inSingle = false;
    let w = 0;
    for (let done = false; !done;) {
      const c = byteAt(buf, p, stop);
      if (inDouble) {
        if (c === BACKSLASH && byteAt(buf, p + 1, stop) === 120 && isHexAt(buf, p + 2, stop)) {
          out[w++] = hexValue(buf[p + 2]!) * 16 + hexValue(buf[p + 3]!);
          p += 3;
        } else if (c === BACKSLASH && p + 1 < stop) {
          p++;
          out[w++] = escaped(buf[p]!);
        } else if (c === DQUOTE) {
          if (p + 1 < stop && !isSpace(buf[p + 1]!)) return undefined;
          done = true;
        } else if (p >= stop) {
          return undefined;
        } else {
          out[w++] = c;
        }
      } else if (inSingle) {
        if (c === BACKSLASH && byteAt(buf, p + 1, stop) === SQUOTE) {
          p++;
          out[w++] = SQUOTE;
        } else if (c === SQUOTE) {
          if (p + 1 < stop && !isSpace(buf[p + 1]!)) return undefined;
          done = true;
        } else if (p >= stop) {
          return undefined;
        } else {
          out[w++] = c;
        }
      } else if (p >= stop || endsWord(c)) {
        done = true;
      } else if (c === DQUOTE) {
        inDouble = true;
      } else if (c === SQUOTE) {
        inSingle = true;
      } else {
        out[w++] = c;
      }
      if (p < stop) p++;
    }
    args.push(latin1(out, 0, w));
  }
}
