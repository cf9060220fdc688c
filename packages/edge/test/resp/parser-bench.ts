// Parser throughput on its hot path: GET pipelines as redis-benchmark sends them.
//   node --import tsx packages/edge/test/resp/parser-bench.ts
import { encodeCommand, RespParser } from "../../src/resp/index.js";

const COMMANDS = 1_000_000;
const ROUNDS = 5;

function bench(label: string, chunks: readonly Buffer[], commands: number): void {
  let best = Infinity;
  for (let round = 0; round < ROUNDS; round++) {
    const p = new RespParser();
    let n = 0;
    const t = process.hrtime.bigint();
    for (const c of chunks) {
      p.feed(c);
      for (let ev = p.next(); ev !== undefined; ev = p.next()) n++;
    }
    best = Math.min(best, Number(process.hrtime.bigint() - t) / commands);
    if (n !== commands) throw new Error(`parsed ${n} of ${commands}`);
  }
  console.log(`${label.padEnd(56)} ${best.toFixed(1).padStart(6)} ns/command`);
}

/** The stream cut into socket-sized chunks, so commands straddle chunk boundaries. */
function chunked(stream: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < stream.length; i += size) out.push(Buffer.from(stream.subarray(i, i + size)));
  return out;
}

const names = Array.from({ length: 100 }, (_, i) => `sequence:${i}`);
const frames = Array.from({ length: COMMANDS }, (_, i) => encodeCommand(["GET", names[i % 100]!]));
const stream = Buffer.concat(frames);
const inline = Buffer.concat(
  Array.from({ length: COMMANDS }, (_, i) => Buffer.from(`GET ${names[i % 100]}\r\n`)),
);

console.log(`node ${process.version}; best of ${ROUNDS} rounds of ${COMMANDS} commands`);
bench("GET, one command per chunk", frames, COMMANDS);
bench("GET pipeline, 64 KiB chunks", chunked(stream, 65536), COMMANDS);
bench("GET pipeline, 1500-byte chunks", chunked(stream, 1500), COMMANDS);
bench("GET pipeline, 7-byte chunks (worst case)", chunked(stream, 7), COMMANDS);
bench("inline GET pipeline, 64 KiB chunks", chunked(inline, 65536), COMMANDS);
