// The Redis-protocol commands of the edge, compatible with number-dispenser's surface (HSET creates,
// GET draws, INFO describes, DEL deletes) plus what real clients send on connect (HELLO, CLIENT,
// AUTH, SELECT, COMMAND, CONFIG GET, INFO). A handler writes its reply synchronously, or returns a
// promise and writes when it settles; the server keeps replies in request order either way.
// Arguments are latin1 strings: one char per byte, so binary payloads (ECHO) round-trip.
import { AutoDisk, Layout, Ordering } from "@dispenser/proto";
import type { CreateSequenceRequest, SequenceType } from "@dispenser/proto";
import { MAX_ISSUE_BATCH } from "@dispenser/proto";
import { MAX_RESERVE_SECONDS } from "@dispenser/domain";
import { EdgeError } from "../errors.js";
import type { Dispenser } from "../issuing/dispenser.js";
import { checkSequenceName, parseCount, parseIdText } from "../issuing/names.js";
import type { DcStats } from "../redis/index.js";
import type { Reply } from "./reply.js";

export interface ConnState {
  proto: 2 | 3;
  authed: boolean;
  name: string;
  readonly id: number;
  quit: boolean;
  /** The last sequence name that passed checkSequenceName: a repeated GET skips the check. */
  checkedName: string;
}

export interface ServerInfo {
  readonly version: string;
  readonly password: string | undefined;
  readonly host: string;
  readonly port: number;
  readonly startedAtMs: number;
  readonly connections: () => number;
  /** DC-wide counts of a sequence from the Redis plane, or why they are not available. */
  readonly dcStats?: (name: string) => Promise<DcStats | string>;
}

export type Handler = (
  d: Dispenser,
  args: readonly string[],
  r: Reply,
  c: ConnState,
  s: ServerInfo,
) => void | Promise<void>;

/** Sections of Redis's INFO: `INFO <section>` answers the server's info, `INFO <name>` a sequence's. */
const INFO_SECTIONS = new Set([
  "server",
  "clients",
  "memory",
  "persistence",
  "stats",
  "replication",
  "cpu",
  "modules",
  "keyspace",
  "all",
  "default",
  "everything",
  "commandstats",
  "errorstats",
  "latencystats",
  "cluster",
]);

const CREATE_FIELDS = new Set([
  "type",
  "length",
  "starting",
  "step",
  "auto_disk",
  "datacenters",
  "ordering",
  "layout",
  "max_segment_size",
  "reserve_seconds",
]);

const AUTO_DISK_BY_NAME: Record<string, AutoDisk> = {
  memory: AutoDisk.AUTO_DISK_MEMORY,
  "pre-base": AutoDisk.AUTO_DISK_PRE_BASE,
  "pre-checkpoint": AutoDisk.AUTO_DISK_PRE_CHECKPOINT,
  elegant_close: AutoDisk.AUTO_DISK_ELEGANT_CLOSE,
  pre_close: AutoDisk.AUTO_DISK_PRE_CLOSE,
};
const ORDERING_BY_NAME: Record<string, Ordering> = {
  edge: Ordering.ORDERING_EDGE,
  dc: Ordering.ORDERING_DC,
  global: Ordering.ORDERING_GLOBAL,
};
const LAYOUT_BY_NAME: Record<string, Layout> = {
  interleaved: Layout.LAYOUT_INTERLEAVED,
  prefix: Layout.LAYOUT_PREFIX,
};

export function arityError(cmd: string): string {
  return `ERR wrong number of arguments for '${cmd.toLowerCase()}' command`;
}

/** The error line of a failed draw or admin call: a code Redis clients show as-is. */
export function errorLine(e: unknown): string {
  if (!(e instanceof EdgeError)) return `ERR internal error: ${e instanceof Error ? e.message : String(e)}`;
  const prefix: Record<EdgeError["code"], string> = {
    "invalid-argument": "ERR",
    "not-found": "ERR",
    "already-exists": "ERR",
    exhausted: "EXHAUSTED",
    overloaded: "BUSY",
    unavailable: "UNAVAILABLE",
    deadline: "TIMEOUT",
    "failed-precondition": "ERR",
    aborted: "ERR",
    internal: "ERR",
  };
  return `${prefix[e.code]} ${e.message}`;
}

function settle(p: Promise<void>, r: Reply): Promise<void> {
  return p.catch((e: unknown) => r.error(errorLine(e)));
}

/** GET <name>: one id. Synchronous when the sequence is loaded and buffered (the hot path). */
export const get: Handler = (d, args, r, c) => {
  if (args.length !== 2) return r.error(arityError("get"));
  const name = args[1]!;
  try {
    if (name !== c.checkedName) {
      checkSequenceName(name);
      c.checkedName = name;
    }
    const s = d.issuer(name);
    if (!(s instanceof Promise)) {
      const id = s.issueOne(d.drawTimeoutMs);
      if (typeof id === "bigint") return r.id(id, s.map);
      return settle(
        id.then((v) => r.id(v, s.map)),
        r,
      );
    }
    return settle(
      s.then(async (i) => r.id(await i.issueOne(d.drawTimeoutMs), i.map)),
      r,
    );
  } catch (e) {
    r.error(errorLine(e));
  }
};

/** MGET <name> [name ...]: one id of each; a failed draw is an error element, the rest stand. */
const mget: Handler = (d, args, r) => {
  if (args.length < 2) return r.error(arityError("mget"));
  const names = args.slice(1);
  return (async () => {
    const out: (string | EdgeError | Error)[] = [];
    for (const name of names) {
      try {
        checkSequenceName(name);
        const s = await d.issuer(name);
        out.push(s.map.text(await s.issueOne(d.drawTimeoutMs)));
      } catch (e) {
        out.push(e instanceof Error ? e : new Error(String(e)));
      }
    }
    r.array(out.length);
    for (const v of out) {
      if (typeof v === "string") r.bulk(v);
      else r.error(errorLine(v));
    }
  })();
};

/** GETN <name> <count>: `count` ids of one sequence (1..10,000), all or none. */
const getn: Handler = (d, args, r) => {
  if (args.length !== 3) return r.error(arityError("getn"));
  try {
    checkSequenceName(args[1]!);
    const n = parseCount(args[2]!, MAX_ISSUE_BATCH);
    return settle(
      d.drawBatch(args[1]!, n).then(({ drawn, map }) => {
        if (Array.isArray(drawn)) {
          r.array(drawn.length);
          for (const id of drawn) r.bulk(map.text(id));
          return;
        }
        r.array(drawn.count);
        for (let i = 0, id = drawn.first; i < drawn.count; i++, id += drawn.step) r.bulk(map.text(id));
      }),
      r,
    );
  } catch (e) {
    r.error(errorLine(e));
  }
};

/**
 * HSET <name> type <1|2|3> [length N] [starting S] [step K] [auto_disk S] [datacenters D]
 * [ordering edge|dc|global] [layout interleaved|prefix] [max_segment_size M] [reserve_seconds S]:
 * creates the sequence.
 * Replies with the number of fields given, as Redis's HSET does.
 */
const hset: Handler = (d, args, r) => {
  if (args.length < 4 || args.length % 2 !== 0) return r.error(arityError("hset"));
  try {
    const name = args[1]!;
    checkSequenceName(name);
    const fields = new Map<string, string>();
    for (let i = 2; i < args.length; i += 2) {
      const k = args[i]!.toLowerCase();
      if (!CREATE_FIELDS.has(k)) {
        throw new EdgeError(
          "invalid-argument",
          `unknown field '${k}' (known: ${[...CREATE_FIELDS].join(", ")})`,
          k,
        );
      }
      if (fields.has(k)) throw new EdgeError("invalid-argument", `field '${k}' given twice`, k);
      fields.set(k, args[i + 1]!);
    }
    const req = createRequest(name, fields);
    return settle(
      d.createSequence(req).then(() => r.int(fields.size)),
      r,
    );
  } catch (e) {
    r.error(errorLine(e));
  }
};

function uintField(fields: Map<string, string>, k: string, max: bigint): bigint | undefined {
  const v = fields.get(k);
  if (v === undefined) return undefined;
  if (!/^[0-9]{1,20}$/.test(v) || BigInt(v) > max) {
    throw new EdgeError("invalid-argument", `${k} must be an integer 0..${max}`, k);
  }
  return BigInt(v);
}

function given<K extends string, T>(k: K, v: bigint | undefined, as: (v: bigint) => T): { [P in K]?: T } {
  return (v === undefined ? {} : { [k]: as(v) }) as { [P in K]?: T };
}

function enumField<T>(fields: Map<string, string>, k: string, table: Record<string, T>): T | undefined {
  const v = fields.get(k);
  if (v === undefined) return undefined;
  // Own keys only: "constructor" or "__proto__" must not find Object's.
  const key = v.toLowerCase();
  const t = Object.hasOwn(table, key) ? table[key] : undefined;
  if (t === undefined)
    throw new EdgeError("invalid-argument", `${k} must be one of ${Object.keys(table).join(", ")}`, k);
  return t;
}

export function createRequest(name: string, fields: Map<string, string>): CreateSequenceRequest {
  const typeText = fields.get("type");
  if (typeText !== "1" && typeText !== "2" && typeText !== "3") {
    throw new EdgeError("invalid-argument", "type must be 1, 2 or 3", "type");
  }
  const type = BigInt(typeText);
  const INT64 = (1n << 63n) - 1n;
  return {
    sequence: {
      name,
      type: Number(type) as SequenceType,
      // Only fields left out take their defaults: a value given (0 included) is checked as given.
      ...given("length", uintField(fields, "length", 18n), Number),
      ...given("starting", uintField(fields, "starting", INT64), (v) => v),
      ...given("step", uintField(fields, "step", INT64), (v) => v),
      ...given("datacenters", uintField(fields, "datacenters", 1024n), Number),
      layout: enumField(fields, "layout", LAYOUT_BY_NAME) ?? Layout.LAYOUT_UNSPECIFIED,
      ordering: enumField(fields, "ordering", ORDERING_BY_NAME) ?? Ordering.ORDERING_UNSPECIFIED,
      autoDisk: enumField(fields, "auto_disk", AUTO_DISK_BY_NAME) ?? AutoDisk.AUTO_DISK_UNSPECIFIED,
      ...given("limits", uintField(fields, "max_segment_size", 100_000_000n), (m) => ({ maxSegmentSize: m })),
      ...given("reserveSeconds", uintField(fields, "reserve_seconds", BigInt(MAX_RESERVE_SECONDS)), Number),
      revision: 0n,
      createdAtMs: 0n,
      keyFingerprint: "",
    },
  };
}

/** DEL <name> [name ...]: deletes; replies with how many existed. */
const del: Handler = (d, args, r) => {
  if (args.length < 2) return r.error(arityError("del"));
  return settle(
    (async () => {
      let n = 0;
      const names = args.slice(1);
      // Every name is checked before any is deleted: a bad one fails the command and deletes none.
      for (const name of names) checkSequenceName(name);
      for (const name of names) {
        try {
          await d.deleteSequence({ name, expectedRevision: 0n });
          n++;
        } catch (e) {
          if (!(e instanceof EdgeError && e.code === "not-found")) throw e;
        }
      }
      r.int(n);
    })(),
    r,
  );
};

/** PARSE <name> <id>: [dc, counter] of an id. */
const parse: Handler = (d, args, r) => {
  if (args.length !== 3) return r.error(arityError("parse"));
  return settle(
    (async () => {
      checkSequenceName(args[1]!);
      const s = await d.issuer(args[1]!);
      const p = s.map.parse(parseIdText(args[2]!));
      r.array(2);
      r.int(p.dc);
      r.int(p.counter);
    })(),
    r,
  );
};

function serverInfo(s: ServerInfo, d: Dispenser): string {
  const up = Math.floor((Date.now() - s.startedAtMs) / 1000);
  return [
    "# Server",
    `redis_version:${s.version}`,
    "redis_mode:standalone",
    `dispenser_version:${s.version}`,
    `dispenser_dc:${d.dc}`,
    `dispenser_edge_id:${d.edgeId}`,
    `tcp_port:${s.port}`,
    `uptime_in_seconds:${up}`,
    "loading:0",
    `dispenser_redis_plane:${s.dcStats ? "on" : "off"}`,
    "",
    "# Clients",
    `connected_clients:${s.connections()}`,
    "",
    "# Persistence",
    "loading:0",
    "",
  ].join("\r\n");
}

/** INFO [section | sequence]. */
const info: Handler = (d, args, r, _c, s) => {
  if (args.length > 2) return r.error(arityError("info"));
  const arg = args[1];
  if (arg === undefined || INFO_SECTIONS.has(arg.toLowerCase())) return r.bulk(serverInfo(s, d));
  return settle(
    (async () => {
      checkSequenceName(arg);
      const i = await d.issuer(arg);
      const def = i.def;
      const total = i.generated + i.wasted;
      const rate = total === 0n ? 0 : Number(i.wasted) / Number(total);
      const lines = [
        `name:${def.name}`,
        `type:${def.type}`,
        `length:${def.length ?? 0}`,
        `starting:${def.starting}`,
        `step:${def.step}`,
        `current:${i.last === undefined ? "" : i.map.text(i.last)}`,
        `auto_disk:${def.autoDisk}`,
        `generated:${i.generated}`,
        `wasted:${i.wasted}`,
        `waste_rate:${rate.toFixed(6)}`,
        `dc:${def.ordering === "global" ? 0 : d.dc}`,
        `datacenters:${def.datacenters}`,
        `ordering:${def.ordering}`,
        `layout:${def.layout}`,
        // Every strategy issues from ledger grants only (memory included): none can repeat an id.
        "durable:1",
        `runway:${i.runway}`,
        `segment_size:${i.segmentSize}`,
        `revision:${i.revision}`,
      ];
      if (s.dcStats) {
        const dc = await s.dcStats(arg);
        if (typeof dc === "string") lines.push(`dc_stats:unavailable (${dc})`);
        else {
          lines.push(`dc_generated:${dc.generated}`, `dc_wasted:${dc.wasted}`, `dc_edges:${dc.edgesSeen}`);
        }
      } else lines.push("dc_stats:off (no Redis plane)");
      const reserve = d.reserveOf(arg);
      if (reserve === "off") lines.push("dc_reserve:off");
      else if (reserve !== undefined) {
        lines.push(
          `dc_reserve_ids:${reserve.left}`,
          `dc_reserve_runway_seconds:${reserve.runwaySeconds === undefined ? "" : Math.floor(reserve.runwaySeconds)}`,
          `on_reserve:${reserve.onReserve ? 1 : 0}`,
        );
      }
      r.bulk(lines.join("\r\n") + "\r\n");
    })(),
    r,
  );
};

const ping: Handler = (_d, args, r) => {
  if (args.length > 2) return r.error(arityError("ping"));
  if (args.length === 2) r.bulk(args[1]!);
  else r.simple("PONG");
};

const echo: Handler = (_d, args, r) => {
  if (args.length !== 2) return r.error(arityError("echo"));
  r.bulk(args[1]!);
};

const quit: Handler = (_d, _args, r, c) => {
  c.quit = true;
  r.ok();
};

function checkPassword(s: ServerInfo, user: string | undefined, pw: string): string | undefined {
  if (s.password === undefined)
    return "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?";
  if ((user === undefined || user === "default") && pw === s.password) return undefined;
  return "WRONGPASS invalid username-password pair or user is disabled.";
}

const auth: Handler = (_d, args, r, c, s) => {
  if (args.length !== 2 && args.length !== 3) return r.error(arityError("auth"));
  const err = args.length === 2 ? checkPassword(s, undefined, args[1]!) : checkPassword(s, args[1], args[2]!);
  if (err) return r.error(err);
  c.authed = true;
  r.ok();
};

/** HELLO [protover [AUTH user pass] [SETNAME name]]: switch protocol first, then answer. */
const hello: Handler = (_d, args, r, c, s) => {
  let proto = c.proto;
  let i = 1;
  if (args.length > 1) {
    const v = args[1]!;
    if (v !== "2" && v !== "3") return r.error("NOPROTO unsupported protocol version");
    proto = v === "3" ? 3 : 2;
    i = 2;
  }
  let setname: string | undefined;
  for (; i < args.length; i++) {
    const opt = args[i]!.toUpperCase();
    if (opt === "AUTH" && i + 2 < args.length) {
      const err = checkPassword(s, args[i + 1], args[i + 2]!);
      if (err) return r.error(err);
      c.authed = true;
      i += 2;
    } else if (opt === "SETNAME" && i + 1 < args.length) {
      setname = args[++i]!;
    } else {
      return r.error(`ERR Syntax error in HELLO option '${args[i]}'`);
    }
  }
  if (s.password !== undefined && !c.authed) {
    return r.error(
      "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
    );
  }
  if (setname !== undefined) c.name = setname;
  // Switch first, then answer: the reply itself is in the new protocol.
  c.proto = proto;
  r.proto = proto;
  r.map(7);
  r.bulk("server");
  r.bulk("dispenser");
  r.bulk("version");
  r.bulk(s.version);
  r.bulk("proto");
  r.int(proto);
  r.bulk("id");
  r.int(c.id);
  r.bulk("mode");
  r.bulk("standalone");
  r.bulk("role");
  r.bulk("master");
  r.bulk("modules");
  r.array(0);
};

const client: Handler = (_d, args, r, c) => {
  const sub = args[1]?.toUpperCase();
  if (sub === "SETNAME" && args.length === 3) {
    c.name = args[2]!;
    return r.ok();
  }
  if (sub === "SETINFO" && args.length === 4) return r.ok();
  if (sub === "GETNAME" && args.length === 2) return c.name ? r.bulk(c.name) : r.nil();
  if (sub === "ID" && args.length === 2) return r.int(c.id);
  r.error(`ERR unknown subcommand or wrong number of arguments for '${args[1] ?? ""}'. Try CLIENT HELP.`);
};

const select: Handler = (_d, args, r) => {
  if (args.length !== 2) return r.error(arityError("select"));
  if (args[1] === "0") return r.ok();
  r.error("ERR DB index is out of range");
};

const command: Handler = (_d, args, r) => {
  const sub = args[1]?.toUpperCase();
  if (sub === "COUNT") return r.int(Object.keys(COMMANDS).length);
  if (sub === "DOCS" || sub === undefined) return r.proto === 3 && sub === "DOCS" ? r.map(0) : r.array(0);
  r.error(`ERR unknown subcommand '${args[1]}'. Try COMMAND HELP.`);
};

const config: Handler = (_d, args, r) => {
  if (args[1]?.toUpperCase() === "GET" && args.length >= 3) return r.map(0);
  r.error("ERR CONFIG is not supported by this server (only CONFIG GET, which answers nothing)");
};

const cluster: Handler = (_d, args, r, _c, s) => {
  const sub = args[1]?.toUpperCase();
  if (sub === "INFO") {
    return r.bulk(
      "cluster_enabled:1\r\ncluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_known_nodes:1\r\ncluster_size:1\r\n",
    );
  }
  if (sub === "SLOTS") {
    r.array(1);
    r.array(3);
    r.int(0);
    r.int(16383);
    r.array(2);
    r.bulk(s.host);
    r.int(s.port);
    return;
  }
  r.error(`ERR unknown subcommand '${args[1] ?? ""}'. Try CLUSTER HELP.`);
};

export const COMMANDS: Readonly<Record<string, Handler>> = {
  GET: get,
  MGET: mget,
  GETN: getn,
  HSET: hset,
  DEL: del,
  INFO: info,
  PARSE: parse,
  PING: ping,
  ECHO: echo,
  QUIT: quit,
  AUTH: auth,
  HELLO: hello,
  CLIENT: client,
  SELECT: select,
  COMMAND: command,
  CONFIG: config,
  CLUSTER: cluster,
};

/** Commands allowed before AUTH when a password is configured. */
export const BEFORE_AUTH = new Set(["AUTH", "HELLO", "QUIT"]);

export function unknownCommand(args: readonly string[]): string {
  const rest = args
    .slice(1, 4)
    .map((a) => `'${a.slice(0, 64)}'`)
    .join(" ");
  return `ERR unknown command '${(args[0] ?? "").slice(0, 64)}', with args beginning with: ${rest}`;
}
