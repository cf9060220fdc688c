import { describe, expect, test } from "vitest";
import type { RespProtocol } from "../../src/resp/index.js";
import { encodeCommand, ReplyWriter, RESP2, RESP3, RespParser } from "../../src/resp/index.js";
import { Prng } from "@dispenser/raft";

/** The bytes one write produces, as a latin1 string so expectations read like the protocol. */
function out(protocol: RespProtocol, write: (w: ReplyWriter) => void): string {
  const w = new ReplyWriter({ protocol });
  write(w);
  return w.take()?.toString("latin1") ?? "";
}
const both = (write: (w: ReplyWriter) => void): [string, string] => [out(RESP2, write), out(RESP3, write)];

describe("replies, byte-exact", () => {
  test("simple strings and errors, CR and LF turned into spaces", () => {
    expect(both((w) => w.simpleString("OK"))).toEqual(["+OK\r\n", "+OK\r\n"]);
    expect(both((w) => w.simpleString("a\r\nb"))).toEqual(["+a  b\r\n", "+a  b\r\n"]);
    expect(both((w) => w.error("ERR unknown command 'x'"))).toEqual([
      "-ERR unknown command 'x'\r\n",
      "-ERR unknown command 'x'\r\n",
    ]);
    expect(out(RESP3, (w) => w.error("NOPROTO unsupported protocol version"))).toBe(
      "-NOPROTO unsupported protocol version\r\n",
    );
    expect(out(RESP2, (w) => w.error("ERR bad\nname\r"))).toBe("-ERR bad name \r\n");
  });

  test("integers, number and bigint", () => {
    const cases: [number | bigint, string][] = [
      [0, ":0\r\n"],
      [7, ":7\r\n"],
      [-1, ":-1\r\n"],
      [12_345_678, ":12345678\r\n"],
      [123_456_789, ":123456789\r\n"],
      [Number.MAX_SAFE_INTEGER, ":9007199254740991\r\n"],
      [-Number.MAX_SAFE_INTEGER, ":-9007199254740991\r\n"],
      [0n, ":0\r\n"],
      [2n ** 53n, ":9007199254740992\r\n"],
      [2n ** 63n - 1n, ":9223372036854775807\r\n"],
      [-(2n ** 63n), ":-9223372036854775808\r\n"],
    ];
    for (const [n, want] of cases)
      expect(
        both((w) => w.integer(n)),
        String(n),
      ).toEqual([want, want]);
  });

  test("integers that are not int64 are refused", () => {
    const w = new ReplyWriter();
    expect(() => w.integer(1.5)).toThrow(RangeError);
    expect(() => w.integer(2 ** 53)).toThrow(RangeError);
    expect(() => w.integer(NaN)).toThrow(RangeError);
    expect(() => w.integer(2n ** 63n)).toThrow(RangeError);
    expect(w.length).toBe(0);
  });

  test("bulk strings: latin1 strings, Buffers, empty, long", () => {
    expect(both((w) => w.bulkString("seq"))).toEqual(["$3\r\nseq\r\n", "$3\r\nseq\r\n"]);
    expect(out(RESP2, (w) => w.bulkString(""))).toBe("$0\r\n\r\n");
    expect(out(RESP2, (w) => w.bulkString("a\r\nb"))).toBe("$4\r\na\r\nb\r\n");
    expect(out(RESP2, (w) => w.bulkString("\xe9\xff\0"))).toBe("$3\r\n\xe9\xff\0\r\n");
    expect(out(RESP2, (w) => w.bulkString(Buffer.from("h\u00e9", "utf8")))).toBe("$3\r\nh\xc3\xa9\r\n");
    const long = "x".repeat(100_000);
    expect(out(RESP3, (w) => w.bulkString(long))).toBe(`$100000\r\n${long}\r\n`);
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString("latin1");
    expect(out(RESP2, (w) => w.bulkString(all))).toBe(`$256\r\n${all}\r\n`);
  });

  test("nil", () => {
    expect(both((w) => w.nil())).toEqual(["$-1\r\n", "_\r\n"]);
  });

  test("arrays and maps", () => {
    const hello = (w: ReplyWriter): void => {
      w.mapHeader(2);
      w.bulkString("proto");
      w.integer(w.protocol);
      w.bulkString("modules");
      w.arrayHeader(0);
    };
    expect(both(hello)).toEqual([
      "*4\r\n$5\r\nproto\r\n:2\r\n$7\r\nmodules\r\n*0\r\n",
      "%2\r\n$5\r\nproto\r\n:3\r\n$7\r\nmodules\r\n*0\r\n",
    ]);
    expect(both((w) => w.arrayHeader(10_001))).toEqual(["*10001\r\n", "*10001\r\n"]);
    expect(() => new ReplyWriter().arrayHeader(-1)).toThrow(RangeError);
  });

  test("doubles", () => {
    expect(both((w) => w.double(1.5))).toEqual(["$3\r\n1.5\r\n", ",1.5\r\n"]);
    expect(both((w) => w.double(-2))).toEqual(["$2\r\n-2\r\n", ",-2\r\n"]);
    expect(both((w) => w.double(Infinity))).toEqual(["$3\r\ninf\r\n", ",inf\r\n"]);
    expect(both((w) => w.double(-Infinity))).toEqual(["$4\r\n-inf\r\n", ",-inf\r\n"]);
    expect(both((w) => w.double(NaN))).toEqual(["$3\r\nnan\r\n", ",nan\r\n"]);
    expect(out(RESP3, (w) => w.double(1e21))).toBe(",1e+21\r\n");
  });
});

describe("ids", () => {
  const bulk = (s: string): string => `$${s.length}\r\n${s}\r\n`;

  test("edges: 0, one digit more, 2^53 +- 1, 2^63 - 1", () => {
    const ids = [
      0n,
      1n,
      9n,
      10n,
      99_999_999n,
      100_000_000n,
      999_999_999n,
      1_000_000_000n,
      2n ** 53n - 1n,
      2n ** 53n,
      2n ** 53n + 1n,
      10n ** 18n,
      2n ** 63n - 1n,
    ];
    for (const id of ids)
      expect(
        both((w) => w.id(id)),
        String(id),
      ).toEqual([bulk(String(id)), bulk(String(id))]);
  });

  test("every digit count, and random ids, match bigint's toString", () => {
    const rng = new Prng(53);
    const ids: bigint[] = [];
    for (let p = 1n; p < 2n ** 64n; p *= 10n) ids.push(p - 1n, p, p + 1n);
    for (let i = 0; i < 5000; i++) {
      const id = (BigInt(rng.u32()) << 32n) | BigInt(rng.u32());
      ids.push(id >> BigInt(rng.intn(64)));
    }
    const w = new ReplyWriter();
    for (const id of ids) w.id(id);
    expect(w.take()?.toString("latin1")).toBe(ids.map((id) => bulk(String(id))).join(""));
  });

  test("an already formatted id is written as given", () => {
    expect(out(RESP2, (w) => w.id("000000000042"))).toBe("$12\r\n000000000042\r\n");
  });
});

describe("the writer", () => {
  test("collects a batch and hands it out once", () => {
    const w = new ReplyWriter();
    expect(w.take()).toBeUndefined();
    w.simpleString("OK");
    w.id(42n);
    w.nil();
    expect(w.length).toBe(5 + 8 + 5);
    expect(w.take()?.toString("latin1")).toBe("+OK\r\n$2\r\n42\r\n$-1\r\n");
    expect(w.length).toBe(0);
    expect(w.take()).toBeUndefined();
  });

  test("a Buffer handed out is never written again", () => {
    const w = new ReplyWriter();
    const taken: [Buffer, string][] = [];
    const rng = new Prng(9);
    for (let batch = 0; batch < 200; batch++) {
      for (let n = rng.intn(50); n >= 0; n--)
        w.bulkString("v".repeat(rng.intn(rng.chance(0.1) ? 20_000 : 30)));
      const b = w.take()!;
      taken.push([b, b.toString("latin1")]);
    }
    for (const [b, text] of taken) expect(b.toString("latin1")).toBe(text);
  });

  test("wantsFlush at flushAtBytes; writing past maxBytes throws", () => {
    const w = new ReplyWriter({ flushAtBytes: 10, maxBytes: 64 });
    w.simpleString("1234"); // 7 bytes
    expect(w.wantsFlush).toBe(false);
    w.simpleString("1"); // 11 bytes
    expect(w.wantsFlush).toBe(true);
    expect(() => w.bulkString("x".repeat(60))).toThrow(RangeError);
    expect(w.take()?.toString("latin1")).toBe("+1234\r\n+1\r\n");
    w.bulkString("x".repeat(30));
    expect(w.length).toBe(37);
    w.bulkString("x".repeat(20)); // exactly 64
    expect(w.length).toBe(64);
    expect(() => w.simpleString("")).toThrow(RangeError);
    expect(w.length).toBe(64);
  });

  test("the protocol can change between replies (HELLO)", () => {
    const w = new ReplyWriter();
    w.nil();
    w.protocol = RESP3;
    w.nil();
    expect(w.take()?.toString("latin1")).toBe("$-1\r\n_\r\n");
  });

  test("options are validated", () => {
    expect(() => new ReplyWriter({ protocol: 4 as RespProtocol })).toThrow(RangeError);
    expect(() => new ReplyWriter({ maxBytes: 0 })).toThrow(RangeError);
    expect(() => new ReplyWriter({ flushAtBytes: 100, maxBytes: 10 })).toThrow(RangeError);
  });
});

describe("encodeCommand", () => {
  test("a multibulk of bulk strings", () => {
    expect(encodeCommand(["GET", "seq"]).toString("latin1")).toBe("*2\r\n$3\r\nGET\r\n$3\r\nseq\r\n");
    expect(encodeCommand([]).toString("latin1")).toBe("*0\r\n");
  });

  test("round-trips every byte value through the parser", () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const p = new RespParser();
    p.feed(encodeCommand(["ECHO", all, all.toString("latin1"), ""]));
    const s = all.toString("latin1");
    expect(p.next()).toEqual({ kind: "command", args: ["ECHO", s, s, ""] });
    // And back out: the writer writes the argument's bytes as they came in.
    const w = new ReplyWriter();
    w.bulkString(s);
    expect(w.take()).toEqual(Buffer.concat([Buffer.from("$256\r\n"), all, Buffer.from("\r\n")]));
  });
});
