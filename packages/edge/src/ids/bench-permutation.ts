// Micro-benchmark of the type 1 permutation: ops/s of forward(), inverse() and the Number methods
// for 7, 12 and 18 digit ids, over consecutive slots (the order an edge draws them in).
// Run: node --import tsx packages/edge/src/ids/bench-permutation.ts [millisPerCase]

import { permutationKeyFor, SlotPermutation } from "./permutation.js";
import { measure as measureFor, opsText as fmt } from "./micro-bench.js";

const millisPerCase = Number(process.argv[2] ?? 1000);
const measure = (fn: (i: number) => void): number => measureFor(fn, millisPerCase);
let sink = 0n;
let sinkNumber = 0;
const key = permutationKeyFor("bench", "secret");
console.log(`node ${process.version}, ${millisPerCase} ms per case`);
for (const length of [7, 12, 18]) {
  const n = 9n * 10n ** BigInt(length - 1);
  const p = new SlotPermutation(n, key);
  const base = n / 3n; // somewhere inside the domain, far from 0
  const results = [
    ["forward", measure((i) => void (sink ^= p.forward(base + BigInt(i))))],
    ["inverse", measure((i) => void (sink ^= p.inverse(base + BigInt(i))))],
  ] as [string, number][];
  if (p.fitsNumber) {
    const b = Number(base);
    results.push(["forwardNumber", measure((i) => void (sinkNumber ^= p.forwardNumber(b + i)))]);
    results.push(["inverseNumber", measure((i) => void (sinkNumber ^= p.inverseNumber(b + i)))]);
  }
  for (const [name, ops] of results) {
    console.log(`length ${String(length).padStart(2)}  ${name.padEnd(14)}${fmt(ops)}`);
  }
}
if (sink === -1n || sinkNumber === -1) console.log("unreachable");
