import { describe, expect, test } from "vitest";
import type { ParseEvent, RespLimits } from "../../src/resp/index.js";
import { DEFAULT_RESP_LIMITS, encodeCommand, RespParser } from "../../src/resp/index.js";
import { bytes, cmd, fatal, parseEager, parseEveryWay } from "./harness.js";

// RESP_TEST_SEED=<n> replays the random splits of a failure; every failure message names its seed.
const BASE_SEED = Number(process.env.RESP_TEST_SEED ?? 20_240_901);

interface Case {
  name: string;
  input: string | Buffer;
  expect: ParseEvent[];
  limits?: Partial<RespLimits>;
}

const get = (name: string): string => `*2\r\n$3\r\nGET\r\n$${name.length}\r\n${name}\r\n`;
const unbalanced: ParseEvent = {
  kind: "error",
  message: "ERR Protocol error: unbalanced quotes in request",
  fatal: false,
};
const BAD_MULTIBULK = "ERR Protocol error: invalid multibulk length";
const BAD_BULK = "ERR Protocol error: invalid bulk length";
const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

const multibulk: Case[] = [
  { name: "GET", input: get("seq"), expect: [cmd("GET", "seq")] },
  {
    name: "a pipeline",
    input: get("a") + get("orders") + "*1\r\n$4\r\nPING\r\n" + get("b"),
    expect: [cmd("GET", "a"), cmd("GET", "orders"), cmd("PING"), cmd("GET", "b")],
  },
  { name: "an empty argument", input: "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", expect: [cmd("ECHO", "")] },
  {
    name: "CR, LF and * inside an argument",
    input: "*2\r\n$4\r\nECHO\r\n$6\r\n\r\n*1\r\n\r\n",
    expect: [cmd("ECHO", "\r\n*1\r\n")],
  },
  {
    name: "every byte value",
    input: Buffer.concat([bytes("*2\r\n$4\r\nECHO\r\n$256\r\n"), ALL_BYTES, bytes("\r\n")]),
    expect: [cmd("ECHO", ALL_BYTES.toString("latin1"))],
  },
  {
    name: "*0 and negative counts are skipped, as Redis does",
    input: "*0\r\n*-1\r\n*-5\r\n*-9223372036854775808\r\n" + get("x"),
    expect: [cmd("GET", "x")],
  },
  {
    name: "a count below int64 is invalid",
    input: "*-9223372036854775809\r\n",
    expect: [fatal(BAD_MULTIBULK)],
  },
  {
    name: "a leading empty line (redis-cli --pipe)",
    input: "\r\n" + get("seq"),
    expect: [cmd("GET", "seq")],
  },
  { name: "MGET of 10,000 names fits the default maxArgs", input: mget(10_000), expect: [mgetCmd(10_000)] },
];

const inline: Case[] = [
  { name: "PING", input: "PING\r\n", expect: [cmd("PING")] },
  { name: "GET seq", input: "GET seq\r\n", expect: [cmd("GET", "seq")] },
  { name: "LF alone ends a line", input: "GET seq\nPING\n", expect: [cmd("GET", "seq"), cmd("PING")] },
  { name: "blanks around arguments", input: " \t GET \t  seq  \r\n", expect: [cmd("GET", "seq")] },
  { name: "empty and blank lines", input: "\r\n\n  \t\r\nPING\r\n\r\n", expect: [cmd("PING")] },
  {
    name: "inline and multibulk mixed",
    input: "PING\r\n" + get("a") + "GET b\r\n",
    expect: [cmd("PING"), cmd("GET", "a"), cmd("GET", "b")],
  },
  { name: "a lone CR separates arguments", input: "PING\rPING\r\n", expect: [cmd("PING", "PING")] },
  {
    name: "leading \\v and \\f are skipped but do not end an argument",
    input: "\x0b\x0cGET\x0b x\r\n",
    expect: [cmd("GET\x0b", "x")],
  },
  { name: "a NUL ends the line", input: "GET a\0b c\r\nPING\r\n", expect: [cmd("GET", "a"), cmd("PING")] },
  {
    name: "double and single quotes",
    input: `SET "a b" 'c d' "" ''\r\n`,
    expect: [cmd("SET", "a b", "c d", "", "")],
  },
  {
    name: "escapes in double quotes",
    input: String.raw`ECHO "\x41\x7a\xff\x00\n\r\t\b\a\"\\\q\xZZ\x4"` + "\r\n",
    expect: [cmd("ECHO", 'Az\xff\0\n\r\t\b\x07"\\qxZZx4')],
  },
  {
    name: "escapes in single quotes: only \\'",
    input: String.raw`ECHO 'it\'s' 'a\nb' '\x41'` + "\r\n",
    expect: [cmd("ECHO", "it's", "a\\nb", "\\x41")],
  },
  {
    name: "a quote inside an argument",
    input: `ECHO ab"c d" x'y z'\r\n`,
    expect: [cmd("ECHO", "abc d", "xy z")],
  },
  {
    name: "a closing quote followed by a non-blank",
    input: `ECHO "a"b\r\nECHO 'a'b\r\nPING\r\n`,
    expect: [unbalanced, unbalanced, cmd("PING")],
  },
  {
    name: "unterminated quotes, then the stream goes on",
    input: `ECHO "abc\r\nECHO 'abc\r\nECHO "a\\"\r\nPING\r\n`,
    expect: [unbalanced, unbalanced, unbalanced, cmd("PING")],
  },
  { name: "a NUL inside quotes leaves them open", input: `ECHO "a\0"\r\n`, expect: [unbalanced] },
  { name: "a quote closed at a NUL", input: `ECHO "a"\0x\r\n`, expect: [cmd("ECHO", "a")] },
  { name: "a tab after a closing quote", input: `ECHO "a"\tb\r\n`, expect: [cmd("ECHO", "a", "b")] },
];

const malformed: Case[] = [
  { name: "a non-numeric count", input: "*x\r\n", expect: [fatal(BAD_MULTIBULK)] },
  { name: "an empty count", input: "*\r\n", expect: [fatal(BAD_MULTIBULK)] },
  { name: "a count with a leading zero", input: "*01\r\n", expect: [fatal(BAD_MULTIBULK)] },
  { name: "a count of -0", input: "*-0\r\n", expect: [fatal(BAD_MULTIBULK)] },
  { name: "a count with a plus sign", input: "*+1\r\n", expect: [fatal(BAD_MULTIBULK)] },
  { name: "a count with a trailing space", input: "*1 \r\n", expect: [fatal(BAD_MULTIBULK)] },
  { name: "a count line ending in CR without LF", input: "*1\rX", expect: [fatal(BAD_MULTIBULK)] },
  { name: "a count line ending in LF alone", input: "*1\n$4\r\nPING\r\n", expect: [fatal(BAD_MULTIBULK)] },
  {
    name: "a count too long to be a number, before its line ends",
    input: "*" + "1".repeat(21),
    expect: [fatal(BAD_MULTIBULK)],
  },
  { name: "a count above int64", input: "*9223372036854775808\r\n", expect: [fatal(BAD_MULTIBULK)] },
  {
    name: "an argument not starting with $",
    input: "*2\r\n$3\r\nGET\r\nxyz\r\n",
    expect: [fatal("ERR Protocol error: expected '$', got 'x'")],
  },
  {
    name: "an integer where a bulk should be",
    input: "*1\r\n:1\r\n",
    expect: [fatal("ERR Protocol error: expected '$', got ':'")],
  },
  {
    name: "an empty line where a bulk should be (CR shown as a space)",
    input: "*1\r\n\r\n",
    expect: [fatal("ERR Protocol error: expected '$', got ' '")],
  },
  {
    name: "a byte above 0x7f where a bulk should be",
    input: "*1\r\n\xff",
    expect: [fatal("ERR Protocol error: expected '$', got '\xff'")],
  },
  { name: "a non-numeric bulk length", input: "*1\r\n$x\r\n", expect: [fatal(BAD_BULK)] },
  { name: "a bulk length of -1 in a request", input: "*1\r\n$-1\r\n", expect: [fatal(BAD_BULK)] },
  { name: "a bulk length with a leading zero", input: "*1\r\n$03\r\nabc\r\n", expect: [fatal(BAD_BULK)] },
  { name: "an empty bulk length", input: "*1\r\n$\r\n\r\n", expect: [fatal(BAD_BULK)] },
  {
    name: "a bulk length line ending in CR without LF",
    input: "*1\r\n$3\rXabc\r\n",
    expect: [fatal(BAD_BULK)],
  },
  {
    name: "a bulk length too long to be a number, before its line ends",
    input: "*1\r\n$" + "9".repeat(21),
    expect: [fatal(BAD_BULK)],
  },
  {
    name: "bulk data not followed by CRLF",
    input: "*1\r\n$3\r\nabcXY",
    expect: [fatal("ERR Protocol error: expected CRLF after bulk argument")],
  },
  {
    name: "bulk data followed by LF alone",
    input: "*1\r\n$3\r\nabc\n*1\r\n",
    expect: [fatal("ERR Protocol error: expected CRLF after bulk argument")],
  },
  {
    name: "an error after good commands",
    input: get("a") + "PING\r\n*1\r\n$x\r\n",
    expect: [cmd("GET", "a"), cmd("PING"), fatal(BAD_BULK)],
  },
];

const limits: Case[] = [
  // maxBulkBytes
  { name: "bulk at maxBulkBytes", input: bulkOf(10), limits: { maxBulkBytes: 10 }, expect: [echoOf(10)] },
  {
    name: "bulk over maxBulkBytes",
    input: bulkOf(11),
    limits: { maxBulkBytes: 10 },
    expect: [fatal(BAD_BULK)],
  },
  {
    name: "bulk over maxBulkBytes is refused on its header",
    input: "*2\r\n$4\r\nECHO\r\n$11\r\n",
    limits: { maxBulkBytes: 10 },
    expect: [fatal(BAD_BULK)],
  },
  // maxArgs
  {
    name: "count at maxArgs",
    input: "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n",
    limits: { maxArgs: 3 },
    expect: [cmd("a", "b", "c")],
  },
  { name: "count over maxArgs", input: "*4\r\n", limits: { maxArgs: 3 }, expect: [fatal(BAD_MULTIBULK)] },
  // maxInlineBytes
  {
    name: "inline line at maxInlineBytes",
    input: "GET 1234\r\n",
    limits: { maxInlineBytes: 8 },
    expect: [cmd("GET", "1234")],
  },
  {
    name: "inline line at maxInlineBytes, LF only",
    input: "GET 1234\n",
    limits: { maxInlineBytes: 8 },
    expect: [cmd("GET", "1234")],
  },
  {
    name: "inline line over maxInlineBytes",
    input: "GET 12345\r\n",
    limits: { maxInlineBytes: 8 },
    expect: [fatal("ERR Protocol error: too big inline request")],
  },
  {
    name: "unterminated inline line over maxInlineBytes",
    input: "GET 12345",
    limits: { maxInlineBytes: 8 },
    expect: [fatal("ERR Protocol error: too big inline request")],
  },
  {
    name: "unterminated inline line at maxInlineBytes with its CR waits",
    input: "GET 1234\r",
    limits: { maxInlineBytes: 8 },
    expect: [],
  },
  {
    name: "a long blank line counts too",
    input: " ".repeat(9) + "\r\n",
    limits: { maxInlineBytes: 8 },
    expect: [fatal("ERR Protocol error: too big inline request")],
  },
  // maxBufferedBytes bounds one multibulk command: these frames are 80 and 81 bytes.
  { name: "command at maxBufferedBytes", input: echoFrame(59), limits: small(80), expect: [echoOf(59)] },
  {
    name: "command over maxBufferedBytes",
    input: echoFrame(60),
    limits: small(80),
    expect: [fatal("ERR Protocol error: too big request")],
  },
  {
    name: "command over maxBufferedBytes in its last small argument",
    input: "*3\r\n$4\r\nECHO\r\n$40\r\n" + "x".repeat(40) + "\r\n$20\r\n" + "y".repeat(20) + "\r\n",
    limits: small(80),
    expect: [fatal("ERR Protocol error: too big request")],
  },
  // The defaults.
  {
    name: "bulk at the default maxBulkBytes",
    input: bulkOf(DEFAULT_RESP_LIMITS.maxBulkBytes),
    expect: [echoOf(DEFAULT_RESP_LIMITS.maxBulkBytes)],
  },
  { name: "bulk over the default maxBulkBytes", input: bulkOf(512 * 1024 + 1), expect: [fatal(BAD_BULK)] },
  { name: "count at the default maxArgs", input: mget(10_000), expect: [mgetCmd(10_000)] },
  { name: "count over the default maxArgs", input: "*10002\r\n", expect: [fatal(BAD_MULTIBULK)] },
  {
    name: "inline line at the default maxInlineBytes",
    input: "ECHO " + "x".repeat(64 * 1024 - 5) + "\r\n",
    expect: [cmd("ECHO", "x".repeat(64 * 1024 - 5))],
  },
  {
    name: "inline line over the default maxInlineBytes",
    input: "ECHO " + "x".repeat(64 * 1024 - 4) + "\r\n",
    expect: [fatal("ERR Protocol error: too big inline request")],
  },
  {
    name: "command at the default maxBufferedBytes",
    input: bigCommand(1024 * 1024),
    expect: [bigCommandEvent(1024 * 1024)],
  },
  {
    name: "command over the default maxBufferedBytes",
    input: bigCommand(1024 * 1024 + 1),
    expect: [fatal("ERR Protocol error: too big request")],
  },
];

function small(maxBufferedBytes: number): Partial<RespLimits> {
  return { maxBufferedBytes, maxInlineBytes: 16 };
}
function bulkOf(n: number): Buffer {
  return Buffer.concat([bytes(`*2\r\n$4\r\nECHO\r\n$${n}\r\n`), Buffer.alloc(n, "z"), bytes("\r\n")]);
}
function echoOf(n: number): ParseEvent {
  return cmd("ECHO", "z".repeat(n));
}
/** `*2 $4 ECHO $n <n bytes>`: 19 + digits(n) + n bytes. */
function echoFrame(n: number): string {
  return `*2\r\n$4\r\nECHO\r\n$${n}\r\n${"z".repeat(n)}\r\n`;
}
function mget(n: number): string {
  let s = `*${n + 1}\r\n$4\r\nMGET\r\n`;
  for (let i = 0; i < n; i++) s += `$${String(i).length}\r\n${i}\r\n`;
  return s;
}
function mgetCmd(n: number): ParseEvent {
  return cmd("MGET", ...Array.from({ length: n }, (_, i) => String(i)));
}
/** ECHO with two bulks of at most 512 KiB, exactly `size` bytes in all. */
function bigCommand(size: number): Buffer {
  return encodeCommand(bigCommandParts(size));
}
function bigCommandEvent(size: number): ParseEvent {
  return cmd(...bigCommandParts(size));
}
function bigCommandParts(size: number): string[] {
  const first = "a".repeat(512 * 1024);
  const fixed = encodeCommand(["ECHO", first]).length; // "*2" becomes "*3": same length
  const last = size - fixed; // the last bulk with its header and CRLFs
  const n = last - String(last).length - 5;
  return ["ECHO", first, "c".repeat(n)];
}

function runCases(cases: readonly Case[], seedBase: number): void {
  test.each(cases.map((c, i) => [c.name, c, seedBase + i] as const))("%s", (_, c, seed) => {
    let input = typeof c.input === "string" ? bytes(c.input) : c.input;
    const last = c.expect.at(-1);
    // After a fatal error nothing more may come out, however good the rest of the input.
    if (last?.kind === "error" && last.fatal) input = Buffer.concat([input, bytes("PING\r\n" + get("x"))]);
    const splits = input.length > 100_000 ? 3 : 8;
    for (const way of parseEveryWay(input, { limits: c.limits, seed, splits })) {
      expect(way.events, `${c.name}: ${way.name}`).toEqual(c.expect);
    }
  });
}

describe("multibulk", () => runCases(multibulk, BASE_SEED));
describe("inline", () => runCases(inline, BASE_SEED + 1000));
describe("malformed frames are fatal", () => runCases(malformed, BASE_SEED + 2000));
describe("limits, just under and just over", () => runCases(limits, BASE_SEED + 3000));

describe("the fixtures are the sizes they claim", () => {
  test("echoFrame", () => {
    expect(bytes(echoFrame(59)).length).toBe(80);
    expect(bytes(echoFrame(60)).length).toBe(81);
  });
  test("bigCommand", () => {
    expect(bigCommand(1024 * 1024).length).toBe(1024 * 1024);
    expect(bigCommand(1024 * 1024 + 1).length).toBe(1024 * 1024 + 1);
  });
});

describe("the pull model", () => {
  test("next() hands out one command at a time and undefined when it needs more", () => {
    const p = new RespParser();
    p.feed(bytes(get("a") + get("b") + "*2\r\n$3\r\nGET"));
    expect(p.next()).toEqual(cmd("GET", "a"));
    expect(p.bufferedBytes).toBe(bytes(get("b") + "*2\r\n$3\r\nGET").length);
    expect(p.next()).toEqual(cmd("GET", "b"));
    expect(p.next()).toBeUndefined();
    expect(p.next()).toBeUndefined();
    p.feed(bytes("\r\n$1\r\nc\r\n"));
    expect(p.next()).toEqual(cmd("GET", "c"));
    expect(p.next()).toBeUndefined();
    expect(p.bufferedBytes).toBe(0);
  });

  test("after a fatal error next() stays undefined and feed() ignores input", () => {
    const p = new RespParser();
    p.feed(bytes("*x\r\n"));
    expect(p.next()).toEqual(fatal(BAD_MULTIBULK));
    expect(p.next()).toBeUndefined();
    p.feed(bytes("PING\r\n"));
    expect(p.next()).toBeUndefined();
    expect(p.bufferedBytes).toBe(0);
  });

  test("a chunk is parsed in place, and still parses right after the caller drops it", () => {
    const p = new RespParser();
    const chunk = bytes(get("a") + "*2\r\n$3\r\nGE");
    p.feed(chunk);
    expect(p.next()).toEqual(cmd("GET", "a"));
    expect(p.next()).toBeUndefined();
    p.feed(bytes("T\r\n$1\r\nb\r\n" + get("c")));
    chunk.fill(0); // the split command's bytes were copied when its rest arrived
    expect([p.next(), p.next(), p.next()]).toEqual([cmd("GET", "b"), cmd("GET", "c"), undefined]);
  });

  test("feeding past maxBufferedBytes without pulling is fatal, after what is held", () => {
    const limits = { maxBufferedBytes: 100, maxInlineBytes: 16 };
    const p = new RespParser(limits);
    const one = bytes(get("abcdefgh")); // 30 bytes
    for (let i = 0; i < 4; i++) p.feed(one); // 120 bytes held: over, but accepted
    p.feed(one); // refused: more than 100 bytes were waiting
    const events: ParseEvent[] = [];
    for (let ev = p.next(); ev !== undefined; ev = p.next()) events.push(ev);
    expect(events).toEqual([
      ...Array.from({ length: 4 }, () => cmd("GET", "abcdefgh")),
      fatal("ERR Protocol error: too much unread input"),
    ]);
  });

  test("a server that pulls keeps any amount of input flowing", () => {
    const p = new RespParser({ maxBufferedBytes: 100, maxInlineBytes: 16 });
    const pipeline = bytes(get("abcdefgh").repeat(1000));
    let n = 0;
    for (let i = 0; i < pipeline.length; i += 7) {
      p.feed(pipeline.subarray(i, i + 7));
      for (let ev = p.next(); ev !== undefined; ev = p.next()) {
        expect(ev).toEqual(cmd("GET", "abcdefgh"));
        n++;
      }
    }
    expect(n).toBe(1000);
  });

  test("limits are validated", () => {
    expect(() => new RespParser({ maxArgs: 0 })).toThrow(RangeError);
    expect(() => new RespParser({ maxBulkBytes: 1.5 })).toThrow(RangeError);
    expect(() => new RespParser({ maxInlineBytes: 1000, maxBufferedBytes: 1000 })).toThrow(RangeError);
    expect(parseEager([bytes("PING\r\n")], { maxInlineBytes: 4, maxBufferedBytes: 68 })).toEqual([
      cmd("PING"),
    ]);
  });
});
