// Starts one ledger node:
//   node --import tsx packages/ledger/src/main.ts --id 1 --cluster-id prod --data-dir /var/lib/ledger \
//     --listen 127.0.0.1:7001 --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 --bootstrap
import { LedgerNode } from "./node.js";
import { optionsFrom, usage } from "./options.js";
import { stopOnSignals } from "@dispenser/plumbing";

export async function runLedger(argv: string[]): Promise<void> {
  const opts = optionsFrom(argv);
  if (opts === "help") {
    console.log(usage());
    return;
  }
  const node = new LedgerNode(opts);
  await node.start();
  // A node refusing its corrupt log stays up only to export the reason; without metrics, exit.
  if (node.quarantined && !opts.metricsListen) process.exit(1);
  stopOnSignals(opts.logger, () => node.stop());
}

if (process.argv[1] !== undefined && import.meta.filename === process.argv[1]) {
  runLedger(process.argv.slice(2)).catch((e: unknown) => {
    console.error(`dispenser-ledger: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });
}
