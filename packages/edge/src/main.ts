// Starts one edge dispenser:
//   node --import tsx packages/edge/src/main.ts --dc 0 --ledger 127.0.0.1:7101,127.0.0.1:7102
// SIGTERM/SIGINT: stop accepting, answer what is in flight, return unused tails, exit 0.
import { stopOnSignals } from "@dispenser/plumbing";
import { EdgeNode } from "./edge-node.js";
import { optionsFrom, usage } from "./options.js";

export async function runEdge(argv: string[]): Promise<void> {
  const opts = optionsFrom(argv);
  if (opts === "help") {
    console.log(usage());
    return;
  }
  const node = new EdgeNode(opts);
  await node.start();
  stopOnSignals(opts.logger, () => node.stop());
}

if (process.argv[1] !== undefined && import.meta.filename === process.argv[1]) {
  runEdge(process.argv.slice(2)).catch((e: unknown) => {
    console.error(`dispenser-edge: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });
}
