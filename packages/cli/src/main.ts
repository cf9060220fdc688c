// The `dispenser` executable: node --import tsx packages/cli/src/main.ts <command> ...
import { runCli } from "./cli.js";
import { processIo } from "./io.js";

export async function main(argv: readonly string[]): Promise<void> {
  const code = await runCli(argv, processIo);
  // Servers started by `ledger` and `edge` keep running and exit from their signal handlers.
  if (code !== "running") process.exit(code);
}

if (process.argv[1] !== undefined && import.meta.filename === process.argv[1]) {
  // `pnpm start -- --flag` hands the script a literal "--" before the flags.
  const argv = process.argv.slice(2);
  await main(argv[1] === "--" ? [argv[0]!, ...argv.slice(2)] : argv[0] === "--" ? argv.slice(1) : argv);
}
