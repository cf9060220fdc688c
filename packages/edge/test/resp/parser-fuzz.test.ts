// Randomized tests of the parser, each iteration from its own seed: a failure names the seed, and
// RESP_FUZZ_SEED=<n> replays it (RESP_FUZZ_RUNS=<n> runs more).
import { describe, expect, test } from "vitest";
import type { ParseEvent } from "../../src/resp/index.js";
import { encodeCommand, RespParser } from "../../src/resp/index.js";
import { bytes, cmd, parseEager, parseLazy, randomPieces } from "./harness.js";
import { Prng } from "@dispenser/raft";

const FIRST_SEED = Number(process.env.RESP_FUZZ_SEED ?? 1);
const RUNS = Number(process.env.RESP_FUZZ_RUNS ?? (process.env.RESP_FUZZ_SEED === undefined ? 1500 : 1));

function forEachSeed(offset: number, body: (rng: Prng) => void): void {
  for (let seed = FIRST_SEED + offset; seed < FIRST_SEED + offset + RUNS; seed++) {
    try {
      body(new Prng(seed));
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      throw new Error(`RESP_FUZZ_SEED=${seed - offset}: ${message}`, { cause: e });
    }
  }
}

/** Argument bytes: mostly short, sometimes long, any byte value. */
function randomArg(rng: Prng): Buffer {
  const len = rng.chance(0.05) ? rng.intn(3000) : rng.chance(0.2) ? 0 : rng.intn(24);
  return Buffer.from(rng.bytes(len));
}

function randomArgs(rng: Prng): Buffer[] {
  return Array.from({ length: 1 + rng.intn(6) }, () => randomArg(rng));
}

const latin1 = (b: Buffer): string => b.toString("latin1");

/** An inline line that sdssplitargs reads back as args: bare words, or quoted with escapes. */
function inlineLine(args: readonly Buffer[], rng: Prng): string {
  const parts = args.map((a) => {
    const bare =
      a.length > 0 && a.every((c) => c > 0x20 && c < 0x7f && c !== 0x22 && c !== 0x27 && c !== 0x5c);
    if (bare && rng.chance(0.7)) return latin1(a);
    const printable = a.every((c) => c >= 0x20 && c < 0x7f && c !== 0x27 && c !== 0x5c);
    if (printable && rng.chance(0.5)) return `'${latin1(a)}'`;
    let s = '"';
    for (const c of a) {
      if (c === 0x22) s += '\\"';
      else if (c === 0x5c) s += "\\\\";
      else if (c === 10 && rng.chance(0.5)) s += "\\n";
      else if (c === 9 && rng.chance(0.5)) s += "\\t";
      else if (c >= 0x20 && c < 0x7f && rng.chance(0.8)) s += String.fromCharCode(c);
      else {
        const hex = c.toString(16).padStart(2, "0");
        s += "\\x" + (rng.chance(0.5) ? hex.toUpperCase() : hex);
      }
    }
    return s + '"';
  });
  const blank = (): string => rng.pick([" ", "  ", "\t", " \t "]);
  // A request starting with * is multibulk, so such a line needs a leading blank.
  return (
    (rng.chance(0.2) || parts[0]?.startsWith("*") ? blank() : "") +
    parts.map((p, i) => (i === 0 ? p : blank() + p)).join("") +
    (rng.chance(0.2) ? blank() : "") +
    rng.pick(["\r\n", "\n"])
  );
}

/** A stream of commands, multibulk and inline, with the ignored bits clients send between them. */
function randomStream(rng: Prng, inlineToo: boolean): { input: Buffer; expected: ParseEvent[] } {
  const pieces: Buffer[] = [];
  const expected: ParseEvent[] = [];
  for (let n = 1 + rng.intn(12); n > 0; n--) {
    if (rng.chance(0.1)) pieces.push(bytes(rng.pick(["\r\n", "\n", "*0\r\n", "*-1\r\n", "  \r\n"])));
    const args = randomArgs(rng);
    // Inline only while the line surely fits maxInlineBytes (an escaped byte takes four).
    const short = args.reduce((n, a) => n + a.length, 0) < 8000;
    if (inlineToo && short && rng.chance(0.4)) pieces.push(bytes(inlineLine(args, rng)));
    else pieces.push(encodeCommand(args));
    expected.push(cmd(...args.map(latin1)));
  }
  return { input: Buffer.concat(pieces), expected };
}

function mutate(input: Buffer, rng: Prng): Buffer {
  let b = Buffer.from(input);
  const interesting = bytes("*$\r\n-0123456789: \"'\\x");
  for (let n = 1 + rng.intn(4); n > 0; n--) {
    const at = rng.intn(b.length + 1);
    switch (rng.intn(6)) {
      case 0: // flip a byte
        if (at < b.length) b[at] = rng.intn(256);
        break;
      case 1: // a protocol-ish byte
        if (at < b.length) b[at] = rng.pick([...interesting]);
        break;
      case 2: // delete
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + rng.intn(3))]);
        break;
      case 3: // insert
        b = Buffer.concat([b.subarray(0, at), rng.bytes(1 + rng.intn(3)), b.subarray(at)]);
        break;
      case 4: // duplicate a stretch
        b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + rng.intn(40)), b.subarray(at)]);
        break;
      default: // truncate
        b = b.subarray(0, at);
    }
  }
  return b;
}

const LATIN1 = /^[^\u0100-\uffff]*$/;

/** What must hold of any event sequence, whatever the input. */
function checkEvents(events: readonly ParseEvent[]): void {
  events.forEach((ev, i) => {
    if (ev.kind === "command") {
      expect(ev.args.length).toBeGreaterThan(0);
      for (const a of ev.args)
        expect(typeof a === "string" && LATIN1.test(a), "a latin1 argument").toBe(true);
    } else {
      expect(ev.kind).toBe("error");
      expect(ev.message).toMatch(/^ERR [^\r\n]+$/);
      expect(typeof ev.fatal).toBe("boolean");
      if (ev.fatal) expect(i, "a fatal error is the last event").toBe(events.length - 1);
    }
  });
}

/** Every way of feeding input gives the same events; returns them. */
function parseEachWay(input: Buffer, rng: Prng, byteByByte: boolean): ParseEvent[] {
  const whole = parseEager([input]);
  checkEvents(whole);
  for (let i = 0; i < 3; i++) {
    const pieces = randomPieces(input, rng, rng.pick([1, 2, 5, 13, 100, 4096]));
    expect(parseEager(pieces), `split ${i}`).toEqual(whole);
    expect(parseLazy(pieces, rng), `split ${i}, lazy pulls`).toEqual(whole);
  }
  if (byteByByte) {
    const single = Array.from({ length: input.length }, (_, i) => input.subarray(i, i + 1));
    expect(parseEager(single), "byte by byte").toEqual(whole);
  }
  return whole;
}

describe("fuzz", () => {
  test("multibulk commands of any bytes round-trip through encodeCommand", () => {
    forEachSeed(0, (rng) => {
      const { input, expected } = randomStream(rng, false);
      expect(parseEachWay(input, rng, rng.chance(0.1))).toEqual(expected);
    });
  });

  test("inline commands round-trip through quoting", () => {
    forEachSeed(100_000, (rng) => {
      const { input, expected } = randomStream(rng, true);
      expect(parseEachWay(input, rng, rng.chance(0.1))).toEqual(expected);
    });
  });

  test("mutated streams: no throw, well-formed events, the same however split", () => {
    const seen = new Map<string, number>();
    forEachSeed(200_000, (rng) => {
      const { input } = randomStream(rng, rng.chance(0.5));
      for (const ev of parseEachWay(mutate(input, rng), rng, rng.chance(0.1))) {
        const key = ev.kind === "command" ? "command" : ev.fatal ? "fatal" : "non-fatal";
        seen.set(key, (seen.get(key) ?? 0) + 1);
      }
    });
    // The mutations reach every kind of outcome.
    if (RUNS >= 1000) expect([...seen.keys()].sort()).toEqual(["command", "fatal", "non-fatal"]);
  });

  test("random bytes: no throw, well-formed events, the same however split", () => {
    const alphabet = bytes("**$$\r\n\r\n\n-0123456789 \"'\\xa\0");
    forEachSeed(300_000, (rng) => {
      const input = Buffer.from(
        Array.from({ length: rng.intn(200) }, () =>
          rng.chance(0.8) ? rng.pick([...alphabet]) : rng.intn(256),
        ),
      );
      parseEachWay(input, rng, true);
    });
  });

  test("after a fatal error, more input yields nothing", () => {
    forEachSeed(400_000, (rng) => {
      const { input } = randomStream(rng, true);
      const p = new RespParser();
      p.feed(mutate(input, rng));
      let last: ParseEvent | undefined;
      for (let ev = p.next(); ev !== undefined; ev = p.next()) last = ev;
      if (last?.kind !== "error" || !last.fatal) return;
      p.feed(encodeCommand(["PING"]));
      p.feed(bytes("PING\r\n"));
      expect(p.next()).toBeUndefined();
      expect(p.bufferedBytes).toBe(0);
    });
  });
});
