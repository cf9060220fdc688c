// The way back from losing a ledger's data: `dispenser ledger backup` (a consistent copy of the
// replicated state), `dispenser ledger restore` (a node's empty data directory started from that
// copy) and `dispenser seq raise-mark` (restart a (sequence, dc) above everything issued since the
// backup, the classic safety gap of database sequences). docs/ARCHITECTURE.md has the procedure.
import { createHash } from "node:crypto";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { MAX_DATACENTERS } from "@dispenser/domain";
import { LedgerClient, restoreDataDir } from "@dispenser/ledger";
import { CliError, EXIT, usageError } from "../errors.js";
import type { CommandSpec, Flags } from "../flags.js";
import { parseFlags } from "../flags.js";
import { toJson } from "../format.js";
import { grpcError } from "../grpc.js";
import type { Io } from "../io.js";
import { LEDGER_CREDENTIAL_FLAGS, ledgerTls } from "../credentials.js";
import { DEV_DEFAULTS } from "../defaults.js";

const LEDGER_FLAGS = [
  {
    name: "ledger",
    value: "host:port,...",
    default: DEV_DEFAULTS.ledgerListen.join(","),
    env: "DISPENSER_LEDGER",
    help: "ledger node addresses (the leader is found from any of them)",
  },
  {
    name: "timeout-ms",
    value: "ms",
    default: "10000",
    env: "DISPENSER_TIMEOUT_MS",
    help: "give up after this long",
  },
  { name: "json", boolean: true, help: "print one JSON document instead of text" },
  ...LEDGER_CREDENTIAL_FLAGS,
];

export const LEDGER_BACKUP: CommandSpec = {
  name: "ledger backup",
  summary: "Writes the ledger's replicated state (catalog, marks, cluster identity) to a file.",
  flags: [{ name: "out", value: "file", help: "where to write the backup (required)" }, ...LEDGER_FLAGS],
  notes:
    "The state is read at one linearizable point. Keep backups off the ledger's disks; after a restore, " +
    "raise the marks of every sequence above what was issued since (seq raise-mark).",
};

export const LEDGER_RESTORE: CommandSpec = {
  name: "ledger restore",
  summary: "Creates a node's data directory from a backup; run it for every node, then start them.",
  flags: [
    { name: "from", value: "file", help: "the backup (required)" },
    { name: "data-dir", value: "dir", help: "the node's data directory, empty or absent (required)" },
    { name: "id", value: "N", help: "this node's id (required)" },
    {
      name: "members",
      value: "id,...",
      help: "the voters of the restored cluster, the same list for every node (default: --id alone)",
    },
    { name: "cluster-id", value: "name", default: "dispenser", help: "as the nodes' --cluster-id" },
    { name: "json", boolean: true, help: "print one JSON document instead of text" },
  ],
  notes:
    "Start the nodes afterwards as usual (--bootstrap is not needed: the directories are not empty). " +
    "The cluster keeps the backup's identity, so edges accept it, and refuse grants below what they " +
    "already held until the marks are raised.",
};

export const LEDGER_RELEASE: CommandSpec = {
  name: "ledger release",
  summary: "Ends the hold of a restored ledger: every sequence leases again (raise the marks first).",
  flags: [...LEDGER_FLAGS],
  notes:
    "A restored ledger does not know the ids issued after its backup. While on hold, a (sequence, dc) " +
    "leases only once seq raise-mark named it; release when every mark in use has been raised.",
};

export const SEQ_RAISE_MARK: CommandSpec = {
  name: "seq raise-mark",
  args: "<name>",
  summary: "Raises a (sequence, dc) mark so nothing below it is granted again (after a restore).",
  flags: [
    { name: "dc", value: "D", default: "0", help: "the datacenter" },
    {
      name: "to",
      value: "C",
      help: "a counter value above everything issued (required; PARSE <name> <id> on an edge gives an id's counter)",
    },
    ...LEDGER_FLAGS,
  ],
};

function required(f: Flags, name: string): string {
  const v = f.str(name);
  if (v === undefined || v === "") throw usageError(`--${name} is required`, f.command);
  return v;
}

async function withLedger<T>(f: Flags, what: string, call: (c: LedgerClient) => Promise<T>): Promise<T> {
  const endpoints = f.list("ledger");
  if (endpoints.length === 0) throw usageError("--ledger needs at least one host:port", f.command);
  const timeoutMs = f.int("timeout-ms", 1, 600_000) ?? 10_000;
  const tls = ledgerTls(f);
  const c = new LedgerClient({ endpoints, totalTimeoutMs: timeoutMs, ...(tls ? { tls } : {}) });
  try {
    return await call(c);
  } catch (e) {
    throw grpcError(e, what, endpoints.join(","), timeoutMs);
  } finally {
    c.close();
  }
}

export async function ledgerBackup(argv: string[], io: Io): Promise<number> {
  const f = parseFlags(LEDGER_BACKUP, argv, io.env);
  f.noMoreThan(0);
  const out = required(f, "out");
  // Fetched in parts (a backup can be far larger than one message), checked whole.
  const r = await withLedger(f, "the ledger", async (c) => {
    const first = await c.call("backup", { backupId: "", offset: 0n });
    const parts = [first.state];
    let got = BigInt(first.state.byteLength);
    while (got < first.totalBytes) {
      const next = await c.call("backup", { backupId: first.backupId, offset: got });
      if (next.state.byteLength === 0) break;
      parts.push(next.state);
      got += BigInt(next.state.byteLength);
    }
    const state = Buffer.concat(parts);
    const sha = createHash("sha256").update(state).digest();
    if (BigInt(state.byteLength) !== first.totalBytes || !sha.equals(first.sha256))
      throw new Error(`the backup's parts do not add up to what the ledger announced: nothing written`);
    return { ...first, state };
  });
  // Written aside and renamed, so a failed write never leaves half a backup under the name.
  writeFileSync(`${out}.tmp`, r.state);
  renameSync(`${out}.tmp`, out);
  const summary = {
    file: out,
    bytes: r.state.byteLength,
    applied_index: r.appliedIndex.toString(),
    cluster_identity: r.clusterIdentity,
  };
  if (f.bool("json")) io.out(toJson(summary) + "\n");
  else
    io.out(
      `wrote ${out}: ${summary.bytes} bytes, the state at index ${summary.applied_index} of cluster ` +
        `${summary.cluster_identity || "(no identity yet)"}\n`,
    );
  return 0;
}

export async function ledgerRestore(argv: string[], io: Io): Promise<number> {
  const f = parseFlags(LEDGER_RESTORE, argv, io.env);
  f.noMoreThan(0);
  const from = required(f, "from");
  const dataDir = required(f, "data-dir");
  const id = f.int("id", 1, Number.MAX_SAFE_INTEGER);
  if (id === undefined) throw usageError("--id is required", f.command);
  const members = f.has("members")
    ? f.list("members").map((m) => {
        if (!/^[1-9][0-9]{0,15}$/.test(m))
          throw usageError(`--members entry "${m}" is not a node id`, f.command);
        return Number(m);
      })
    : [id];
  let backup: Buffer;
  try {
    backup = readFileSync(from);
  } catch (e) {
    throw new CliError(`cannot read ${from}: ${e instanceof Error ? e.message : String(e)}`, EXIT.usage);
  }
  let r;
  try {
    r = await restoreDataDir({
      dataDir,
      clusterId: f.str("cluster-id") ?? "dispenser",
      nodeId: id,
      voters: members,
      backup,
    });
  } catch (e) {
    throw new CliError(`restore into ${dataDir}: ${e instanceof Error ? e.message : String(e)}`, EXIT.server);
  }
  const summary = {
    data_dir: dataDir,
    id,
    members,
    cluster_identity: r.identity,
    revision: r.revision.toString(),
    sequences: r.sequences,
  };
  if (f.bool("json")) io.out(toJson(summary) + "\n");
  else
    io.out(
      `restored ${dataDir} for node ${id} of [${members.join(", ")}]: ${r.sequences} sequence names, ` +
        `catalog revision ${summary.revision}, cluster ${r.identity || "(no identity yet)"}\n`,
    );
  return 0;
}

export async function ledgerRelease(argv: string[], io: Io): Promise<number> {
  const f = parseFlags(LEDGER_RELEASE, argv, io.env);
  f.noMoreThan(0);
  const r = await withLedger(f, "the ledger", (c) => c.call("releaseRestore", {}));
  if (f.bool("json")) io.out(toJson({ was_held: r.wasHeld }) + "\n");
  else io.out(r.wasHeld ? "released: every sequence leases again\n" : "the ledger was not on hold\n");
  return 0;
}

export async function seqRaiseMark(argv: string[], io: Io): Promise<number> {
  const f = parseFlags(SEQ_RAISE_MARK, argv, io.env);
  const name = f.arg(0, "sequence name");
  f.noMoreThan(1);
  const dc = f.int("dc", 0, MAX_DATACENTERS - 1) ?? 0;
  const to = f.uint("to", (1n << 63n) - 1n);
  if (to === undefined) throw usageError("--to is required", f.command);
  const r = await withLedger(f, "the ledger", (c) => c.call("raiseMark", { sequence: name, dc, to }));
  if (f.bool("json")) io.out(toJson({ name, dc, hwm: r.hwm.toString(), raised: r.raised }) + "\n");
  else
    io.out(
      r.raised
        ? `raised ${name} dc ${dc}: nothing below counter ${r.hwm} is granted again\n`
        : `${name} dc ${dc} was already at ${r.hwm}: unchanged (and released, if the ledger is on hold)\n`,
    );
  return 0;
}
