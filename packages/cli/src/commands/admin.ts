// Admin over gRPC to an edge: seq create|list|describe|update|delete, next, parse. Every command prints
// for people by default and one JSON document with --json.
import { MAX_RESERVE_SECONDS, SEQUENCE_NAME_PATTERN, SEQUENCE_NAME_RULE } from "@dispenser/domain";
import type { SequenceDefinition } from "@dispenser/proto";
import { AutoDisk, Layout, MAX_ISSUE_BATCH, Ordering, SequenceType } from "@dispenser/proto";
import { usageError } from "../errors.js";
import type { CommandSpec, FlagSpec, Flags } from "../flags.js";
import { parseFlags } from "../flags.js";
import {
  AUTO_DISK_NAMES,
  byName,
  fields,
  idText,
  LAYOUT_NAMES,
  ORDERING_NAMES,
  sequenceView,
  table,
  toJson,
} from "../format.js";
import { batchIds, EdgeApi } from "../grpc.js";
import type { Io } from "../io.js";
import { EDGE_CREDENTIAL_FLAGS, edgeAccess } from "../credentials.js";

export const DEFAULT_EDGE = "127.0.0.1:50051";
const INT64_MAX = (1n << 63n) - 1n;

/** Flags of every command that talks to an edge. */
export const EDGE_FLAGS: readonly FlagSpec[] = [
  {
    name: "edge",
    value: "host:port",
    default: DEFAULT_EDGE,
    env: "DISPENSER_EDGE",
    help: "the edge's gRPC address",
  },
  { name: "json", boolean: true, help: "print one JSON document instead of text" },
  {
    name: "timeout-ms",
    value: "ms",
    default: "5000",
    env: "DISPENSER_TIMEOUT_MS",
    help: "deadline of each call",
  },
  ...EDGE_CREDENTIAL_FLAGS,
];

export const SEQ_CREATE: CommandSpec = {
  name: "seq create",
  args: "<name>",
  summary: "Creates a sequence (what the RESP command HSET <name> type ... does).",
  flags: [
    {
      name: "type",
      value: "1|2|3",
      help: "1 fixed-length random, 2 fixed-length increasing, 3 increasing (required)",
    },
    { name: "length", value: "N", help: "digits of every id, 1..18 (required for types 1 and 2)" },
    { name: "starting", value: "S", help: "the first id (default: the smallest id of the length, or 1)" },
    { name: "step", value: "K", help: "distance between consecutive ids, type 3 (default: 1)" },
    { name: "datacenters", value: "D", help: "number of datacenters, 1..1024 (default: 1)" },
    { name: "ordering", value: "edge|dc|global", help: "where ids only grow (default: edge)" },
    {
      name: "auto-disk",
      value: "S",
      help: "memory, pre-base, pre-checkpoint, elegant_close, pre_close (default: pre-checkpoint)",
    },
    {
      name: "layout",
      value: "interleaved|prefix",
      help: "where the datacenter goes in the id (default: interleaved)",
    },
    {
      name: "max-segment-size",
      value: "M",
      help: "largest segment one lease may take (default: the ledger's)",
    },
    {
      name: "reserve-seconds",
      value: "S",
      help: "seconds of its DC's draw rate each DC's reserve holds for it; 0: none (default: each edge's --reserve-seconds)",
    },
    ...EDGE_FLAGS,
  ],
};
export const SEQ_LIST: CommandSpec = {
  name: "seq list",
  summary: "Lists every sequence.",
  flags: EDGE_FLAGS,
};
export const SEQ_DESCRIBE: CommandSpec = {
  name: "seq describe",
  args: "<name>",
  summary: "Prints a sequence's definition.",
  flags: EDGE_FLAGS,
};
export const SEQ_UPDATE: CommandSpec = {
  name: "seq update",
  args: "<name>",
  summary:
    "Changes what is safe to change: ordering, auto-disk, max segment size. This edge follows at " +
    "once, every other edge at its next lease of the sequence.",
  flags: [
    { name: "ordering", value: "edge|dc|global", help: "where ids only grow" },
    {
      name: "auto-disk",
      value: "S",
      help: "memory, pre-base, pre-checkpoint, elegant_close, pre_close",
    },
    { name: "max-segment-size", value: "M", help: "largest segment one lease may take" },
    {
      name: "reserve-seconds",
      value: "S",
      help: "seconds of its DC's draw rate each DC's reserve holds for it; 0: none",
    },
    {
      name: "expected-revision",
      value: "R",
      help: "refuse unless the sequence is still at this revision (seq describe shows it)",
    },
    ...EDGE_FLAGS,
  ],
};
export const SEQ_DELETE: CommandSpec = {
  name: "seq delete",
  args: "<name>",
  summary:
    "Deletes a sequence. The ledger keeps its high-water marks: created again, it never repeats an id.",
  flags: EDGE_FLAGS,
};
export const NEXT: CommandSpec = {
  name: "next",
  args: "<sequence>",
  summary: "Draws ids from the edge (Issue, or IssueBatch with -n), one per line.",
  flags: [
    { name: "count", short: "n", value: "N", default: "1", help: `ids to draw, 1..${MAX_ISSUE_BATCH}` },
    ...EDGE_FLAGS,
  ],
};
export const PARSE: CommandSpec = {
  name: "parse",
  args: "<sequence> <id>",
  summary: "Prints the datacenter and counter an id was made from.",
  flags: EDGE_FLAGS,
};

function edgeOf(f: Flags, env: Io["env"]): EdgeApi {
  const address = f.required("edge");
  if (!/^[^:\s]+:[0-9]{1,5}$/.test(address) && !/^\[.*\]:[0-9]{1,5}$/.test(address))
    throw usageError(`--edge must be host:port, got "${address}"`, f.command);
  return new EdgeApi(address, f.int("timeout-ms", 1, 3_600_000) ?? 5_000, edgeAccess(f, env));
}

async function withEdge<T>(f: Flags, env: Io["env"], run: (edge: EdgeApi) => Promise<T>): Promise<T> {
  const edge = edgeOf(f, env);
  try {
    return await run(edge);
  } finally {
    edge.close();
  }
}

function nameArg(f: Flags, i: number, what: string): string {
  const name = f.arg(i, what);
  if (!SEQUENCE_NAME_PATTERN.test(name))
    throw usageError(`${what} "${name}" must be ${SEQUENCE_NAME_RULE}`, f.command);
  return name;
}

function enumFlag<T, U extends T | undefined>(
  f: Flags,
  flag: string,
  names: ReadonlyMap<T, string>,
  unset: U,
): T | U {
  const v = f.str(flag);
  if (v === undefined) return unset;
  const t = byName(names, v);
  if (t === undefined)
    throw usageError(`--${flag} must be one of ${[...names.values()].join(", ")}, got "${v}"`, f.command);
  return t;
}

/** The definition `seq create` asks for; refuses what is malformed before calling anyone. */
export function definitionFrom(f: Flags): SequenceDefinition {
  const name = nameArg(f, 0, "sequence name");
  f.noMoreThan(1);
  const typeText = f.str("type");
  if (typeText === undefined) throw usageError("--type is required (1, 2 or 3)", f.command);
  if (!/^[123]$/.test(typeText)) throw usageError(`--type must be 1, 2 or 3, got "${typeText}"`, f.command);
  const type = Number(typeText) as SequenceType;
  const length = f.int("length", 1, 18);
  const fixed =
    type === SequenceType.SEQUENCE_TYPE_RANDOM_FIXED_LENGTH ||
    type === SequenceType.SEQUENCE_TYPE_INCREASING_FIXED_LENGTH;
  if (fixed && length === undefined)
    throw usageError(`--length is required for type ${type} (digits of every id, 1..18)`, f.command);
  if (!fixed && length !== undefined)
    throw usageError(
      "--length applies to types 1 and 2 only (type 3 ids grow without a fixed length)",
      f.command,
    );
  return {
    name,
    type,
    ...present("length", length),
    ...present("starting", f.uint("starting", INT64_MAX)),
    ...present("step", f.uint("step", INT64_MAX)),
    ...present("datacenters", f.int("datacenters", 1, 1024)),
    layout: enumFlag(f, "layout", LAYOUT_NAMES, Layout.LAYOUT_UNSPECIFIED),
    ordering: enumFlag(f, "ordering", ORDERING_NAMES, Ordering.ORDERING_UNSPECIFIED),
    autoDisk: enumFlag(f, "auto-disk", AUTO_DISK_NAMES, AutoDisk.AUTO_DISK_UNSPECIFIED),
    ...present(
      "limits",
      mapUnset(f.uint("max-segment-size", INT64_MAX), (m) => ({ maxSegmentSize: m })),
    ),
    ...present("reserveSeconds", f.int("reserve-seconds", 0, MAX_RESERVE_SECONDS)),
    revision: 0n,
    createdAtMs: 0n,
    keyFingerprint: "",
  };
}

/** `{ [k]: v }` when a flag was given, `{}` when not: the server fills in only what is unset. */
function present<K extends string, V>(k: K, v: V | undefined): { [P in K]?: V } {
  return (v === undefined ? {} : { [k]: v }) as { [P in K]?: V };
}

const mapUnset = <T, U>(v: T | undefined, f: (v: T) => U): U | undefined =>
  v === undefined ? undefined : f(v);

export async function seqCreate(argv: string[], io: Io): Promise<number> {
  const f = parseFlags(SEQ_CREATE, argv, io.env);
  const def = definitionFrom(f);
  const r = await withEdge(f, io.env, (e) => e.create(def));
  const v = r.sequence ? sequenceView(r.sequence) : undefined;
  if (f.bool("json")) io.out(toJson(v) + "\n");
  else if (v) {
    const len = v.type === 3 ? "" : `, length ${v.length}`;
    io.out(
      `created ${v.name}: type ${v.type}${len}, starting ${v.starting}, step ${v.step}, ` +
        `ordering ${v.ordering}, auto_disk ${v.auto_disk}, revision ${v.revision}\n`,
    );
  }
  return 0;
}

export async function seqList(argv: string[], io: Io): Promise<number> {
  const f = parseFlags(SEQ_LIST, argv, io.env);
  f.noMoreThan(0);
  const all = (await withEdge(f, io.env, (e) => e.listAll())).map(sequenceView);
  if (f.bool("json")) io.out(toJson(all) + "\n");
  else if (all.length === 0) io.out("no sequences yet (create one: dispenser seq create <name> --type 3)\n");
  else
    io.out(
      table(
        ["NAME", "TYPE", "LENGTH", "STARTING", "STEP", "DCS", "ORDERING", "AUTO_DISK", "REVISION"],
        all.map((v) => [
          v.name,
          String(v.type),
          v.type === 3 ? "-" : String(v.length),
          v.starting,
          v.step,
          String(v.datacenters),
          v.ordering,
          v.auto_disk,
          v.revision,
        ]),
      ),
    );
  return 0;
}

export async function seqDescribe(argv: string[], io: Io): Promise<number> {
  const f = parseFlags(SEQ_DESCRIBE, argv, io.env);
  const name = nameArg(f, 0, "sequence name");
  f.noMoreThan(1);
  const r = await withEdge(f, io.env, (e) => e.describe(name));
  const v = r.sequence ? sequenceView(r.sequence) : undefined;
  if (f.bool("json")) io.out(toJson(v) + "\n");
  else if (v) io.out(fields({ ...v }));
  return 0;
}

export async function seqUpdate(argv: string[], io: Io): Promise<number> {
  const f = parseFlags(SEQ_UPDATE, argv, io.env);
  const name = nameArg(f, 0, "sequence name");
  f.noMoreThan(1);
  const ordering = enumFlag(f, "ordering", ORDERING_NAMES, undefined);
  const autoDisk = enumFlag(f, "auto-disk", AUTO_DISK_NAMES, undefined);
  const maxSegmentSize = f.uint("max-segment-size", INT64_MAX);
  const reserveSeconds = f.int("reserve-seconds", 0, MAX_RESERVE_SECONDS);
  if (
    ordering === undefined &&
    autoDisk === undefined &&
    maxSegmentSize === undefined &&
    reserveSeconds === undefined
  )
    throw usageError(
      "nothing to change: give --ordering, --auto-disk, --max-segment-size or --reserve-seconds",
      f.command,
    );
  const r = await withEdge(f, io.env, (e) =>
    e.update({
      name,
      expectedRevision: f.uint("expected-revision", INT64_MAX) ?? 0n,
      ...(ordering !== undefined ? { ordering } : {}),
      ...(autoDisk !== undefined ? { autoDisk } : {}),
      ...(maxSegmentSize !== undefined ? { limits: { maxSegmentSize } } : {}),
      ...(reserveSeconds !== undefined ? { reserveSeconds } : {}),
    }),
  );
  const v = r.sequence ? sequenceView(r.sequence) : undefined;
  if (f.bool("json")) io.out(toJson(v) + "\n");
  else if (v)
    io.out(
      `updated ${v.name}: ordering ${v.ordering}, auto_disk ${v.auto_disk}, ` +
        `max_segment_size ${v.max_segment_size}, reserve_seconds ${v.reserve_seconds}, revision ${v.revision}\n`,
    );
  return 0;
}

export async function seqDelete(argv: string[], io: Io): Promise<number> {
  const f = parseFlags(SEQ_DELETE, argv, io.env);
  const name = nameArg(f, 0, "sequence name");
  f.noMoreThan(1);
  const r = await withEdge(f, io.env, (e) => e.delete(name));
  if (f.bool("json")) io.out(toJson({ name, revision: r.revision }) + "\n");
  else io.out(`deleted ${name} (catalog revision ${r.revision}); its ids are never issued again\n`);
  return 0;
}

export async function next(argv: string[], io: Io): Promise<number> {
  const f = parseFlags(NEXT, argv, io.env);
  const name = nameArg(f, 0, "sequence name");
  f.noMoreThan(1);
  const count = f.int("count", 1, MAX_ISSUE_BATCH) ?? 1;
  const ids = await withEdge(f, io.env, async (e) => {
    if (count === 1) return [(await e.issue(name)).str];
    const batch = batchIds(await e.issueBatch(name, count));
    const def = (await e.describe(name)).sequence;
    return batch.map((id) => idText(id, def));
  });
  if (f.bool("json")) io.out(toJson({ sequence: name, ids }) + "\n");
  else io.out(ids.join("\n") + "\n");
  return 0;
}

export async function parse(argv: string[], io: Io): Promise<number> {
  const f = parseFlags(PARSE, argv, io.env);
  const name = nameArg(f, 0, "sequence name");
  const id = f.arg(1, "id");
  f.noMoreThan(2);
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(id)) throw usageError(`"${id}" is not an id`, f.command);
  const r = await withEdge(f, io.env, (e) => e.parse(name, id));
  if (f.bool("json")) io.out(toJson({ sequence: name, id, dc: r.dc, counter: r.counter }) + "\n");
  else io.out(fields({ sequence: name, id, dc: r.dc, counter: r.counter.toString() }));
  return 0;
}
