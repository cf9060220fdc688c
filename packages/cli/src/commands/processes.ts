// `dispenser ledger ...` and `dispenser edge ...`: one process each. Their flags (with environment
// variables and --config files, one precedence rule) are the processes' own, parsed by the parser
// every command shares; this only reports a bad command line as the CLI does.
import { edgeOptionsFrom, edgeUsage, runEdge } from "@dispenser/edge";
import { ledgerOptionsFrom, ledgerUsage, runLedger } from "@dispenser/ledger";
import { CliError, EXIT, usageError } from "../errors.js";
import type { Io } from "../io.js";

type Role = "ledger" | "edge";

const ROLES = {
  ledger: { usage: ledgerUsage, check: (argv: string[]): unknown => ledgerOptionsFrom(argv), run: runLedger },
  edge: { usage: edgeUsage, check: (argv: string[]): unknown => edgeOptionsFrom(argv), run: runEdge },
} as const;

export function processHelp(role: Role): string {
  return ROLES[role].usage();
}

/** Starts the process; it then runs until SIGTERM/SIGINT, which exit on their own. */
export async function runProcess(role: Role, argv: readonly string[], io: Io): Promise<number | "running"> {
  const r = ROLES[role];
  const args = [...argv];
  let checked: unknown;
  try {
    checked = r.check(args);
  } catch (e) {
    throw usageError((e instanceof Error ? e.message : String(e)).split("\n")[0]!, role);
  }
  if (checked === "help") {
    io.out(processHelp(role));
    return 0;
  }
  try {
    await r.run(args);
  } catch (e) {
    throw new CliError(
      `${role}: ${(e instanceof Error ? e.message : String(e)).split("\n")[0]!}`,
      EXIT.server,
    );
  }
  return "running";
}
