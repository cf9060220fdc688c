// pnpm chaos: three datacenters of real processes on loopback (a 3-voter ledger, one voter per DC;
// two edges and a 6-node Redis Cluster per DC; TCP proxies on every link between DCs), clients
// drawing over RESP, gRPC and the SDK in every ordering, and a seeded nemesis. Every operation
// goes to a history file; the checkers read it at the end. The last line is the verdict; the exit
// code is 1 when an id was handed out twice or out of order.
//
//   pnpm chaos [-- --duration 60 --seed 1 --interval 4 --history FILE]
//   pnpm chaos -- --check FILE            check a history file again
import { parseArgs } from "node:util";
import { join, resolve } from "node:path";
import { check, summaryLine } from "./checkers.js";
import { Clients, SEQUENCES } from "./clients.js";
import { History, readHistory } from "./history.js";
import { Nemesis } from "./nemesis.js";
import { ThreeDcs } from "../support/three-dc.js";

const REPO = resolve(import.meta.dirname, "..", "..");
const argv = process.argv.slice(2);
const { values: a } = parseArgs({
  args: argv[0] === "--" ? argv.slice(1) : argv,
  options: {
    duration: { type: "string", default: "60" },
    seed: { type: "string", default: String(Date.now() % 1_000_000) },
    interval: { type: "string", default: "4" },
    history: { type: "string" },
    check: { type: "string" },
  },
});

const log = (m: string): void => console.log(`[${new Date().toISOString().slice(11, 23)}] ${m}`);
const ranges = new Map(SEQUENCES.filter((s) => s.range).map((s) => [s.name, s.range!]));

function report(draws: Parameters<typeof check>[0]): number {
  const v = check(draws, { dcs: 3, ranges });
  log(`errors: ${[...v.errors].map(([e, n]) => `${e} ${n}`).join(", ") || "none"}`);
  log(
    `availability per DC (answered within 1 s): ${v.availability.map((x) => `${(100 * x).toFixed(1)}%`).join(" / ")}`,
  );
  log(`ids outside their range: ${v.outOfRange}`);
  console.log(summaryLine(v));
  return v.duplicated > 0 || v.orderingViolations > 0 || v.outOfRange > 0 ? 1 : 0;
}

async function main(): Promise<number> {
  if (a.check !== undefined) return report(readHistory(a.check));
  const seconds = Number(a.duration);
  const seed = Number(a.seed);
  const interval = Number(a.interval);
  if (!(seconds > 0 && Number.isSafeInteger(seed) && interval > 0))
    throw new Error("--duration, --seed and --interval are numbers");
  const file = a.history ?? join(REPO, ".chaos", `history-${seed}.jsonl`);
  log(`seed ${seed}, ${seconds} s, a fault every ~${interval} s; history in ${file}`);
  const dcs = new ThreeDcs({ edgesPerDc: 2 });
  const history = new History(file);
  try {
    await dcs.start();
    // Create the sequences (the ledger may still be electing).
    const admin = dcs.edges[0]!.client;
    for (const s of SEQUENCES) {
      for (let tries = 0; ; tries++) {
        const r = await admin.call("HSET", s.name, ...s.fields).catch((e: Error) => e);
        if (!(r instanceof Error) || /exists/.test(r.message)) break;
        if (tries > 100) throw r;
        await new Promise((res) => setTimeout(res, 200));
      }
    }
    log("three DCs up; drawing");
    const clients = new Clients(dcs, history);
    clients.start();
    const nemesis = new Nemesis(dcs, history, seed, interval * 1000);
    nemesis.start();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    await nemesis.stop();
    await clients.stop();
    log(`faults: ${[...history.faults].map(([f, n]) => `${f} ${n}`).join(", ") || "none"}`);
  } finally {
    await history.close();
    await dcs.stop();
  }
  return report(history.draws);
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`chaos: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(2);
  },
);
