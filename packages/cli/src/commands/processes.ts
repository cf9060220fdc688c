// `dispenser ledger ...` and `dispenser edge ...`: one process each, with the flags and environment
// variables of runLedger/runEdge, plus --config file.json (keys are flag names). The file's flags go
// first on the command line handed on, so flags typed after them win, and both win over the
// environment, which runLedger/runEdge read for whatever no flag set.
import { edgeOptionsFrom, edgeUsage, runEdge } from "@dispenser/edge";
import { ledgerOptionsFrom, ledgerUsage, runLedger } from "@dispenser/ledger";
import { CliError, EXIT, usageError } from "../errors.js";
import { PRECEDENCE_NOTE, readConfig } from "../flags.js";
import type { Io } from "../io.js";

type Role = "ledger" | "edge";

const ROLES = {
  ledger: {
    usage: ledgerUsage,
    check: (argv: string[]): unknown => ledgerOptionsFrom(argv),
    run: runLedger,
    /** Switches of the ledger: `--bootstrap`, not `--bootstrap true`. */
    switches: new Set(["bootstrap", "join"]),
    example:
      "example: dispenser ledger --id 1 --data-dir .dispenser/ledger-1 --listen 127.0.0.1:7101 \\\n" +
      "           --peers 1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103 --bootstrap",
  },
  edge: {
    usage: edgeUsage,
    check: (argv: string[]): unknown => edgeOptionsFrom(argv),
    run: runEdge,
    switches: new Set<string>(),
    example: "example: dispenser edge --ledger 127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103 --dc 0",
  },
} as const;

export function processHelp(role: Role): string {
  const r = ROLES[role];
  return [
    r.usage().replace(`dispenser-${role}`, `dispenser ${role}`),
    `  --${"config".padEnd(role === "ledger" ? 17 : 19)} read flags from a JSON object whose keys are flag names (default: none)`,
    PRECEDENCE_NOTE,
    "",
    r.example,
    "",
  ].join("\n");
}

function flagNames(role: Role): Set<string> {
  return new Set([...ROLES[role].usage().matchAll(/^\s+--([a-z-]+)/gm)].map((m) => m[1]!));
}

/** The command line handed to runLedger/runEdge: the config file's flags, then the typed ones. */
export function processArgv(role: Role, argv: readonly string[]): string[] {
  const typed: string[] = [];
  let config: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--config") {
      config = argv[++i];
      if (config === undefined) throw usageError("--config needs a value", role);
    } else if (a.startsWith("--config=")) config = a.slice("--config=".length);
    else typed.push(a);
  }
  if (config === undefined) return typed;
  const fromFile: string[] = [];
  for (const [k, v] of readConfig(config, role, flagNames(role))) {
    if (ROLES[role].switches.has(k)) {
      if (v !== "true" && v !== "false")
        throw usageError(`config file ${config}: "${k}" must be true or false`, role);
      fromFile.push(v === "true" ? `--${k}` : `--${k}=false`);
    } else fromFile.push(`--${k}`, v);
  }
  return [...fromFile, ...typed];
}

/** Starts the process; it then runs until SIGTERM/SIGINT, which exit on their own. */
export async function runProcess(role: Role, argv: readonly string[], io: Io): Promise<number | "running"> {
  if (argv.includes("--help") || argv.includes("-h")) {
    io.out(processHelp(role));
    return 0;
  }
  const args = processArgv(role, argv);
  const r = ROLES[role];
  try {
    r.check(args);
  } catch (e) {
    throw usageError((e instanceof Error ? e.message : String(e)).split("\n")[0]!, role);
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
