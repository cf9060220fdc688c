// Reply encoding for RESP2 and RESP3. A ReplyWriter collects the replies to one batch of pipelined
// commands in a growable buffer, and the server writes them with one socket.write per batch.
//
// Strings are written as latin1 (one byte per char), the way the parser decodes arguments, so an
// argument echoed back is byte-exact. Text outside latin1 must be passed as a Buffer.

export const RESP2 = 2;
export const RESP3 = 3;
export type RespProtocol = typeof RESP2 | typeof RESP3;

export interface ReplyWriterOptions {
  /** The protocol replies are written in; HELLO changes it on the writer. Default RESP2. */
  protocol: RespProtocol;
  /** Pending bytes at which wantsFlush turns true, to write them before running more. Default 64 KiB. */
  flushAtBytes: number;
  /**
   * Most pending bytes. Writing past it throws a RangeError: the server flushes when wantsFlush, and no
   * single reply comes near this (an ECHO is bounded by the parser's maxBulkBytes). Default 8 MiB.
   */
  maxBytes: number;
}

export const DEFAULT_REPLY_WRITER_OPTIONS: Readonly<ReplyWriterOptions> = Object.freeze({
  protocol: RESP2,
  flushAtBytes: 64 * 1024,
  maxBytes: 8 * 1024 * 1024,
});

const CR = 13;
const LF = 10;
const SPACE = 32;
const ZERO = 48;
// Below this many chars a JS loop beats the native call of Buffer.write.
const NATIVE_WRITE_CHARS = 64;
const MIN_ALLOC_BYTES = 1024;
// Room is reserved before a reply's exact length is known: at most this much too much.
const ESTIMATE_SLACK = 24;
// A buffer bigger than this is handed over with the batch rather than kept for the next one.
const KEEP_BYTES = 64 * 1024;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const INT64_MAX = 0x7fff_ffff_ffff_ffffn;
const INT64_MIN = -0x8000_0000_0000_0000n;
const EMPTY = Buffer.alloc(0);

export class ReplyWriter {
  /** Switched by HELLO; affects nil, maps and doubles. */
  protocol: RespProtocol;
  private readonly flushAtBytes: number;
  private readonly maxBytes: number;
  private buf: Buffer = EMPTY;
  private len = 0;
  /** Size of the next buffer: that of the last one handed over, so a steady load allocates once per batch. */
  private allocBytes = MIN_ALLOC_BYTES;

  constructor(options: Partial<ReplyWriterOptions> = {}) {
    const o = { ...DEFAULT_REPLY_WRITER_OPTIONS, ...options };
    if (o.protocol !== RESP2 && o.protocol !== RESP3) throw new RangeError("protocol must be 2 or 3");
    for (const k of ["flushAtBytes", "maxBytes"] as const) {
      if (!Number.isSafeInteger(o[k]) || o[k] < 1) throw new RangeError(`${k} must be a positive integer`);
    }
    if (o.flushAtBytes > o.maxBytes) throw new RangeError("flushAtBytes must not exceed maxBytes");
    this.protocol = o.protocol;
    this.flushAtBytes = o.flushAtBytes;
    this.maxBytes = o.maxBytes;
  }

  /** Bytes written and not yet taken. */
  get length(): number {
    return this.len;
  }

  /** True once enough is pending that it should be written out before running more commands. */
  get wantsFlush(): boolean {
    return this.len >= this.flushAtBytes;
  }

  /**
   * The pending bytes, to be written to the socket as they are, or undefined if there are none. The
   * returned Buffer is never written to again by this writer.
   */
  take(): Buffer | undefined {
    const len = this.len;
    if (len === 0) return undefined;
    const buf = this.buf;
    this.len = 0;
    if (len * 2 >= buf.length || buf.length > KEEP_BYTES) {
      // Mostly full: hand the buffer over rather than copy it.
      this.buf = EMPTY;
      this.allocBytes = Math.min(buf.length, KEEP_BYTES);
      return buf.subarray(0, len);
    }
    const out = Buffer.allocUnsafe(len);
    buf.copy(out, 0, 0, len);
    return out;
  }

  /** `+OK`; CR and LF in s become spaces, so the reply stays one line. */
  simpleString(s: string): void {
    this.line(0x2b, s);
  }

  /** `-ERR ...`: message starts with the error code ("ERR", "NOPROTO", ...); CR and LF become spaces. */
  error(message: string): void {
    this.line(0x2d, message);
  }

  /** `:<n>`, for an integer within int64 (a number must be a safe integer). */
  integer(n: number | bigint): void {
    if (typeof n === "bigint") {
      if (n < INT64_MIN || n > INT64_MAX) throw new RangeError(`integer reply ${n} is outside int64`);
      if (n < -MAX_SAFE || n > MAX_SAFE) {
        this.typed(0x3a, n.toString());
        return;
      }
      n = Number(n);
    }
    if (!Number.isSafeInteger(n)) throw new RangeError(`integer reply ${n} is not a safe integer`);
    const buf = this.ensure(24);
    let o = this.len;
    buf[o++] = 0x3a;
    if (n < 0) {
      buf[o++] = 0x2d;
      n = -n;
    }
    this.commit(crlf(buf, putUint(buf, o, n)));
  }

  /** `$<len>\r\n<bytes>\r\n`; a string is written as latin1. */
  bulkString(s: string | Uint8Array): void {
    const n = s.length;
    const buf = this.ensure(n + 24);
    let o = this.len;
    buf[o] = 0x24;
    o = crlf(buf, putUint(buf, o + 1, n));
    if (typeof s !== "string") buf.set(s, o);
    else if (n < NATIVE_WRITE_CHARS) for (let i = 0; i < n; i++) buf[o + i] = s.charCodeAt(i);
    else buf.write(s, o, n, "latin1");
    this.commit(crlf(buf, o + n));
  }

  /**
   * An id as a bulk string of its decimal digits: the fast path for GET and MGET. A string is taken as
   * already formatted (zero-padded ids). Ids below 2^53 are formatted with number arithmetic, faster
   * than bigint's toString (figures in test/resp/id-format-bench.ts).
   */
  id(id: bigint | string): void {
    if (typeof id === "string") {
      this.bulkString(id);
      return;
    }
    const n = id <= MAX_SAFE ? Number(id) : -1;
    if (n < 0) {
      this.bulkString(id.toString());
      return;
    }
    const digits = uintDigits(n);
    const buf = this.ensure(24);
    let o = this.len;
    buf[o++] = 0x24;
    if (digits >= 10) buf[o++] = 0x31;
    buf[o++] = ZERO + (digits % 10);
    this.commit(crlf(buf, putUint(buf, crlf(buf, o), n)));
  }

  /** The null reply: `$-1` in RESP2, `_` in RESP3. */
  nil(): void {
    if (this.protocol === RESP3) this.typed(0x5f, "");
    else this.typed(0x24, "-1");
  }

  /** `*<n>`; the n elements follow. */
  arrayHeader(n: number): void {
    this.header(0x2a, n);
  }

  /** `%<n>` in RESP3, a flat array of 2n in RESP2; n key-value pairs follow. */
  mapHeader(n: number): void {
    if (this.protocol === RESP3) this.header(0x25, n);
    else this.header(0x2a, 2 * n);
  }

  /** `,<x>` in RESP3 (inf, -inf and nan spelled as RESP3 does); a bulk string of that text in RESP2. */
  double(x: number): void {
    const s = x === Infinity ? "inf" : x === -Infinity ? "-inf" : Number.isNaN(x) ? "nan" : String(x);
    if (this.protocol === RESP3) this.typed(0x2c, s);
    else this.bulkString(s);
  }

  private header(type: number, n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`aggregate length ${n} is not a count`);
    const buf = this.ensure(24);
    buf[this.len] = type;
    this.commit(crlf(buf, putUint(buf, this.len + 1, n)));
  }

  /** type, then s (latin1, known to hold no CR or LF), then CRLF. */
  private typed(type: number, s: string): void {
    const buf = this.ensure(s.length + 3);
    let o = this.len;
    buf[o++] = type;
    for (let i = 0; i < s.length; i++) buf[o + i] = s.charCodeAt(i);
    this.commit(crlf(buf, o + s.length));
  }

  /** type, then s with CR and LF as spaces, then CRLF. */
  private line(type: number, s: string): void {
    const n = s.length;
    const buf = this.ensure(n + 3);
    let o = this.len;
    buf[o++] = type;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      buf[o + i] = c === CR || c === LF ? SPACE : c;
    }
    this.commit(crlf(buf, o + n));
  }

  /** The buffer, with room for n more bytes after this.len; n may overestimate by up to ESTIMATE_SLACK. */
  private ensure(n: number): Buffer {
    const need = this.len + n;
    if (need <= this.buf.length) return this.buf;
    if (need > this.maxBytes + ESTIMATE_SLACK) throw this.overMax();
    const size = Math.max(need, this.buf.length * 2, this.allocBytes);
    const next = Buffer.allocUnsafe(Math.min(this.maxBytes + ESTIMATE_SLACK, size));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
    return next;
  }

  /** Ends a reply at `end`; one that would pass maxBytes is dropped and throws. */
  private commit(end: number): void {
    if (end > this.maxBytes) throw this.overMax();
    this.len = end;
  }

  private overMax(): RangeError {
    return new RangeError(`reply buffer would exceed ${this.maxBytes} bytes: take() when wantsFlush`);
  }
}

/** A request as a client sends it: a multibulk of bulk strings (strings as latin1). */
export function encodeCommand(args: readonly (string | Uint8Array)[]): Buffer {
  let size = 24;
  for (const a of args) size += a.length + 24;
  const w = new ReplyWriter({ flushAtBytes: size, maxBytes: size });
  w.arrayHeader(args.length);
  for (const a of args) w.bulkString(a);
  return w.take() ?? EMPTY;
}

function crlf(buf: Buffer, o: number): number {
  buf[o] = CR;
  buf[o + 1] = LF;
  return o + 2;
}

/** Decimal digits of 0 <= n < 1e8. */
function digits8(n: number): number {
  if (n < 1e4) return n < 100 ? (n < 10 ? 1 : 2) : n < 1e3 ? 3 : 4;
  return n < 1e6 ? (n < 1e5 ? 5 : 6) : n < 1e7 ? 7 : 8;
}

/** Decimal digits of a safe integer n >= 0. */
function uintDigits(n: number): number {
  return n < 1e8 ? digits8(n) : 8 + digits8(Math.floor(n / 1e8));
}

// "0000".."9999" as bytes: four digits per lookup, so a 16-digit id takes four integer divisions.
const DIGITS4 = new Uint8Array(40_000);
for (let i = 0; i < 10_000; i++) {
  DIGITS4[4 * i] = ZERO + Math.floor(i / 1000);
  DIGITS4[4 * i + 1] = ZERO + (Math.floor(i / 100) % 10);
  DIGITS4[4 * i + 2] = ZERO + (Math.floor(i / 10) % 10);
  DIGITS4[4 * i + 3] = ZERO + (i % 10);
}

/** Writes the digits of a safe integer n >= 0 at o and returns the offset after them. */
function putUint(buf: Buffer, o: number, n: number): number {
  if (n < 1e8) {
    const d = digits8(n);
    putUint32(buf, o + d, n, d);
    return o + d;
  }
  const hi = Math.floor(n / 1e8);
  const d = digits8(hi);
  putUint32(buf, o + d, hi, d);
  putUint32(buf, o + d + 8, n - hi * 1e8, 8);
  return o + d + 8;
}

/** The last `count` (<= 8) decimal digits of n < 1e8, zero-padded, ending before `end`. */
function putUint32(buf: Buffer, end: number, n: number, count: number): void {
  n |= 0; // so the divisions below are integer arithmetic
  let i = end;
  for (; end - i + 4 <= count; i -= 4) {
    const q = (n / 10_000) | 0;
    const k = (n - q * 10_000) << 2;
    buf[i - 4] = DIGITS4[k]!;
    buf[i - 3] = DIGITS4[k + 1]!;
    buf[i - 2] = DIGITS4[k + 2]!;
    buf[i - 1] = DIGITS4[k + 3]!;
    n = q;
  }
  for (; i > end - count; i--) {
    const q = (n / 10) | 0;
    buf[i - 1] = ZERO + n - q * 10;
    n = q;
  }
}
