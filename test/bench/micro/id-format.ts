// Micro-benchmark of id text: idToDecimal() against bigint toString(), Number printing and a split
// at 10^9 into two Numbers (the alternatives idToDecimal chose between), and IdFormat round trips.
// Run: node --import tsx test/bench/micro/id-format.ts [millisPerCase]

import { IdFormat, idToDecimal } from "@dispenser/edge/ids";
import { measure as measureFor, opsText as fmt } from "./micro-bench.js";

const millisPerCase = Number(process.argv[2] ?? 1000);
const measure = (fn: (i: number) => void): number => measureFor(fn, millisPerCase);
// Precomputed ids, so the measurement is the conversion and not the bigint arithmetic making them.
function ids(from: bigint): bigint[] {
  return Array.from({ length: 4096 }, (_, i) => from + BigInt(i) * 7_919n);
}

const BILLION = 1_000_000_000n;

/** The rejected alternative for large ids: one bigint division, then two Numbers printed. */
function splitDecimal(id: bigint): string {
  const high = id / BILLION;
  return String(Number(high)) + String(Number(id - high * BILLION)).padStart(9, "0");
}

let sink = 0;
const cases: [string, bigint[]][] = [
  ["7 digits", ids(1_234_567n)],
  ["10 digits", ids(2_034_567_890n)],
  ["15 digits", ids(123_456_789_012_345n)],
  ["18 digits", ids(123_456_789_012_345_678n)],
  ["19 digits", ids(9_123_456_789_012_345_678n)],
];
console.log(`node ${process.version}, ${millisPerCase} ms per case`);
for (const [name, xs] of cases) {
  const results: [string, number][] = [
    ["idToDecimal", measure((i) => void (sink += idToDecimal(xs[i & 4095]!).length))],
    ["toString", measure((i) => void (sink += xs[i & 4095]!.toString().length))],
    ["split 10^9", measure((i) => void (sink += splitDecimal(xs[i & 4095]!).length))],
  ];
  if (xs.every((x) => x <= BigInt(Number.MAX_SAFE_INTEGER))) {
    results.push(["String(Number)", measure((i) => void (sink += String(Number(xs[i & 4095]!)).length))]);
  }
  console.log(`${name.padEnd(10)}${results.map(([what, ops]) => `  ${what} ${fmt(ops)}`).join("")}`);
}
const ord = new IdFormat({ prefix: "ORD", width: 8 });
const dated = new IdFormat({ date: "YYYYMMDD", width: 6 });
const atMs = Date.UTC(2025, 8, 9, 12);
const texts = ids(10_000_000n).map((id) => ord.formatId(id % 100_000_000n));
const ordFormat = measure((i) => void (sink += ord.formatId(BigInt(i % 100_000_000)).length));
const datedFormat = measure((i) => void (sink += dated.formatId(BigInt(i % 1_000_000), atMs).length));
const ordParse = measure((i) => {
  const r = ord.parseFormatted(texts[i & 4095]!);
  if (r.ok) sink += Number(r.id & 1n);
});
console.log(`ORD+8 formatId        ${fmt(ordFormat)}`);
console.log(`date+6 formatId       ${fmt(datedFormat)}`);
console.log(`ORD+8 parseFormatted  ${fmt(ordParse)}`);
if (sink === -1) console.log("unreachable");
