// Runs parser input in every way it can arrive, so a test asserts the outcome is the same for all.
import type { ParseEvent, RespLimits } from "../../src/resp/index.js";
import { RespParser } from "../../src/resp/index.js";
import { Prng } from "@dispenser/raft";

/** Splits input into pieces: sizes 1..maxPiece, drawn from the PRNG. */
export function randomPieces(input: Buffer, rng: Prng, maxPiece: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < input.length;) {
    const n = 1 + rng.intn(maxPiece);
    out.push(input.subarray(i, i + n));
    i += n;
  }
  return out;
}

/** Feeds the pieces, pulling everything after each one; then checks nothing is left to pull. */
export function parseEager(pieces: Iterable<Buffer>, limits?: Partial<RespLimits>): ParseEvent[] {
  const p = new RespParser(limits);
  const out: ParseEvent[] = [];
  for (const piece of pieces) {
    p.feed(piece);
    for (let ev = p.next(); ev !== undefined; ev = p.next()) out.push(ev);
  }
  return out;
}

/**
 * Feeds the pieces but pulls only 0..2 events after each, as a server at its pipeline depth does; then
 * pulls the rest.
 */
export function parseLazy(pieces: readonly Buffer[], rng: Prng, limits?: Partial<RespLimits>): ParseEvent[] {
  const p = new RespParser(limits);
  const out: ParseEvent[] = [];
  for (const piece of pieces) {
    p.feed(piece);
    for (let k = rng.intn(3); k > 0; k--) {
      const ev = p.next();
      if (ev === undefined) break;
      out.push(ev);
    }
  }
  for (let ev = p.next(); ev !== undefined; ev = p.next()) out.push(ev);
  return out;
}

function* eachByte(input: Buffer): Generator<Buffer> {
  for (let i = 0; i < input.length; i++) yield input.subarray(i, i + 1);
}

export interface Way {
  name: string;
  events: ParseEvent[];
}

/**
 * The events of input fed whole, byte by byte, and in random splits (pulled eagerly and lazily). Lazy
 * pulling is skipped when the input is bigger than maxBufferedBytes, where it rightly ends differently.
 */
export function parseEveryWay(
  input: Buffer,
  opts: { limits?: Partial<RespLimits>; seed: number; splits?: number },
): Way[] {
  const ways: Way[] = [{ name: "whole", events: parseEager([input], opts.limits) }];
  ways.push({ name: "byte by byte", events: parseEager(eachByte(input), opts.limits) });
  const rng = new Prng(opts.seed);
  const lazyOk = input.length <= (opts.limits?.maxBufferedBytes ?? 1024 * 1024);
  for (let i = 0; i < (opts.splits ?? 8); i++) {
    const maxPiece = rng.pick([2, 3, 7, 16, 64, 1024, 65536]);
    const pieces = randomPieces(input, rng, maxPiece);
    ways.push({
      name: `random pieces <= ${maxPiece} (seed ${opts.seed}, split ${i})`,
      events: parseEager(pieces, opts.limits),
    });
    if (lazyOk) {
      ways.push({
        name: `random pieces <= ${maxPiece}, lazy pulls (seed ${opts.seed}, split ${i})`,
        events: parseLazy(pieces, rng, opts.limits),
      });
    }
  }
  return ways;
}

export const cmd = (...args: string[]): ParseEvent => ({ kind: "command", args });
export const fatal = (message: string): ParseEvent => ({ kind: "error", message, fatal: true });

/** Bytes of a latin1 string: tests write protocol text with \r\n and \xNN escapes. */
export const bytes = (s: string): Buffer => Buffer.from(s, "latin1");
