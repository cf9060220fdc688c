// Micro-benchmark of the type 1 permutation: ops/s of forward() and inverse() for 7, 12 and 18
// digit ids, over consecutive slots (the order an edge draws them in).
// Run: node --import tsx test/bench/micro/permutation.ts [millisPerCase]

import { permutationKeyFor, SlotPermutation } from "@dispenser/edge/ids";
import { measure as measureFor, opsText as fmt } from "./micro-bench.js";

const millisPerCase = Number(process.argv[2] ?? 1000);
const measure = (fn: (i: number) => void): number => measureFor(fn, millisPerCase);
let sink = 0n;
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
  for (const [name, ops] of results) {
    console.log(`length ${String(length).padStart(2)}  ${name.padEnd(14)}${fmt(ops)}`);
  }
}
if (sink === -1n) console.log("unreachable");
