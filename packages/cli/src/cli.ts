// The `dispenser` command: finds the subcommand, prints --help, and turns every failure into one
// line on stderr and an exit code (see EXIT).
import { readFileSync } from "node:fs";
import { CliError, EXIT, usageError } from "./errors.js";
import type { CommandSpec } from "./flags.js";
import { helpText } from "./flags.js";
import type { Io } from "./io.js";
import type * as AdminModule from "./commands/admin.js";
import type * as RecoveryModule from "./commands/recovery.js";

interface Command {
  readonly spec: CommandSpec;
  run(argv: string[], io: Io): Promise<number | "running">;
}

// Loaded on use: the servers and the Redis client take a while to import, and admin commands
// should start fast.
const admin = (): Promise<typeof AdminModule> => import("./commands/admin.js");
const recovery = (): Promise<typeof RecoveryModule> => import("./commands/recovery.js");
const SEQ: Readonly<Record<string, () => Promise<Command>>> = {
  create: async () => admin().then((m) => ({ spec: m.SEQ_CREATE, run: m.seqCreate })),
  list: async () => admin().then((m) => ({ spec: m.SEQ_LIST, run: m.seqList })),
  describe: async () => admin().then((m) => ({ spec: m.SEQ_DESCRIBE, run: m.seqDescribe })),
  update: async () => admin().then((m) => ({ spec: m.SEQ_UPDATE, run: m.seqUpdate })),
  delete: async () => admin().then((m) => ({ spec: m.SEQ_DELETE, run: m.seqDelete })),
  "raise-mark": async () => recovery().then((m) => ({ spec: m.SEQ_RAISE_MARK, run: m.seqRaiseMark })),
};
/** `dispenser ledger <sub>`; any other `dispenser ledger ...` runs a ledger node. */
const LEDGER: Readonly<Record<string, () => Promise<Command>>> = {
  backup: async () => recovery().then((m) => ({ spec: m.LEDGER_BACKUP, run: m.ledgerBackup })),
  restore: async () => recovery().then((m) => ({ spec: m.LEDGER_RESTORE, run: m.ledgerRestore })),
  release: async () => recovery().then((m) => ({ spec: m.LEDGER_RELEASE, run: m.ledgerRelease })),
};
const COMMANDS: Readonly<Record<string, () => Promise<Command>>> = {
  dev: async () => import("./commands/dev.js").then((m) => ({ spec: m.DEV, run: m.runDev })),
  next: async () => admin().then((m) => ({ spec: m.NEXT, run: m.next })),
  parse: async () => admin().then((m) => ({ spec: m.PARSE, run: m.parse })),
  status: async () => import("./commands/status.js").then((m) => ({ spec: m.STATUS, run: m.status })),
  bench: async () => import("./commands/bench.js").then((m) => ({ spec: m.BENCH, run: m.bench })),
};

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

export function mainHelp(): string {
  return `usage: dispenser <command> [arguments] [flags]

Run a cluster:
  dev                         the embedded dev cluster: 3 ledger nodes, an edge per DC (pnpm start)
  ledger [flags]              one ledger node
  edge [flags]                one edge dispenser

Admin, over gRPC to an edge (--edge host:port, default 127.0.0.1:50051, env DISPENSER_EDGE):
  seq create <name> --type 1|2|3 [--length N] [--starting S] [--step K] [--datacenters D]
             [--ordering edge|dc|global] [--auto-disk S]
  seq list
  seq describe <name>
  seq update <name> [--ordering edge|dc|global] [--auto-disk S] [--max-segment-size M]
  seq delete <name>
  next <sequence> [-n N]      draw ids
  parse <sequence> <id>       the datacenter and counter of an id
  status                      ledger members, leader, terms, lag; the edge's runway per sequence
  bench [sequence]            load an edge over RESP or gRPC, report ids/s and latency

Recovery, over gRPC to the ledger (--ledger host:port,..., env DISPENSER_LEDGER):
  ledger backup --out FILE    the replicated state (catalog, marks, cluster identity) to a file
  ledger restore --from FILE --data-dir DIR --id N [--members 1,2,3]
                              an empty node directory started from a backup (offline, per node);
                              the restored cluster is on hold until marks are raised
  ledger release              end the hold: every sequence leases again
  seq raise-mark <name> --dc D --to C
                              nothing below counter C of (name, D) is granted again

Every admin command takes --json for one JSON document on stdout.
Every command takes --help, and --config file.json (keys are flag names).
Precedence: flags on the command line, then the --config file, then environment variables, then defaults.

Exit codes:
  0   success
  1   the server answered with an error (no such sequence, exists, exhausted, refused input)
  2   usage error (unknown command or flag, missing or malformed argument, bad config file)
  3   the server could not be reached or did not answer in time
`;
}

function wantsHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf("--");
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === "--help" || a === "-h");
}

async function dispatch(argv: readonly string[], io: Io): Promise<number | "running"> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    io.err(mainHelp());
    return EXIT.usage;
  }
  if (name === "help" || name === "--help" || name === "-h") {
    const topic = rest[0];
    if (topic === undefined) {
      io.out(mainHelp());
      return 0;
    }
    return dispatch([...rest, "--help"], io);
  }
  if (name === "version" || name === "--version") {
    io.out(`${version()}\n`);
    return 0;
  }
  const ledgerSub = name === "ledger" && rest[0] !== undefined ? LEDGER[rest[0]] : undefined;
  if ((name === "ledger" && ledgerSub === undefined) || name === "edge")
    return (await import("./commands/processes.js")).runProcess(name, rest, io);
  let load = COMMANDS[name];
  let args = rest;
  if (ledgerSub !== undefined) {
    load = ledgerSub;
    args = rest.slice(1);
  } else if (name === "seq") {
    const sub = rest[0];
    if (sub === undefined || sub === "--help" || sub === "-h") {
      if (sub === undefined)
        throw usageError("missing subcommand: create, list, describe, update, delete or raise-mark", "seq");
      const all = await Promise.all(Object.values(SEQ).map((l) => l()));
      io.out(all.map((c) => helpText(c.spec)).join("\n"));
      return 0;
    }
    load = SEQ[sub];
    if (load === undefined)
      throw usageError(
        `unknown subcommand "seq ${sub}" (create, list, describe, update, delete, raise-mark)`,
        "seq",
      );
    args = rest.slice(1);
  } else if (load === undefined) {
    throw usageError(`unknown command "${name}"`);
  }
  const cmd = await load();
  if (wantsHelp(args)) {
    io.out(helpText(cmd.spec));
    return 0;
  }
  return cmd.run(args, io);
}

/**
 * Runs one command line. Resolves with the exit code, or "running" when the command started a
 * server that keeps the process alive and exits on its own signal handlers (ledger, edge).
 */
export async function runCli(argv: readonly string[], io: Io): Promise<number | "running"> {
  try {
    return await dispatch(argv, io);
  } catch (e) {
    if (e instanceof CliError) {
      io.err(`dispenser: ${e.message}${e.hint !== undefined ? ` (${e.hint})` : ""}\n`);
      return e.exitCode;
    }
    const msg = e instanceof Error ? (e.stack ?? e.message) : String(e);
    io.err(`dispenser: internal error: ${msg}\n`);
    return EXIT.internal;
  }
}
