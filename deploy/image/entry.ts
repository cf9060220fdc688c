// The production entry point: the `dispenser` command, bundled into compiled JavaScript by
// bundle.ts. Runs `dispenser ledger ...`, `dispenser edge ...` and every other command.
import { main } from "../../packages/cli/src/main.js";

const argv = process.argv.slice(2);
await main(argv);
