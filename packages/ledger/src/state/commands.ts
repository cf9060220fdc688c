// The ledger's Raft commands and their encoding: one format byte (1), then canonical UTF-8 JSON with
// bigints as decimal strings. Decoding is strict (unknown fields, wrong types and out-of-range values
// are rejected with a reason) and never throws, so a malformed entry fails the same way everywhere.
// A new field therefore needs a new format byte: old replicas must not silently ignore it.

import type { Fields, Json } from "./json.js";
import {
  bigJson,
  canonicalJson,
  DecodeError,
  parseJson,
  readBigint,
  readInt,
  readObject,
  readString,
  utf8,
} from "./json.js";
import type {
  AutoDisk,
  Layout,
  Ordering,
  SequenceChanges,
  SequenceDef,
  SequenceLimits,
  SequenceType,
} from "./sequence.js";
import {
  describeErrors,
  MAX_DATACENTERS,
  validateChanges,
  validateName,
  validateSequenceDef,
} from "./sequence.js";
import { INT64_MAX } from "./space.js";

/** The (term, index) of the Raft entry that committed a grant. */
export interface Fence {
  readonly term: number;
  readonly index: number;
}

export const LEASE_KINDS = ["segment", "window"] as const;
export type LeaseKind = (typeof LEASE_KINDS)[number];

export interface CreateSequence {
  readonly type: "CreateSequence";
  readonly def: SequenceDef;
  /** Stamped by the leader when proposing: the state machine never reads a clock. */
  readonly createdAtMs: number;
}

export interface UpdateSequence {
  readonly type: "UpdateSequence";
  readonly name: string;
  readonly changes: SequenceChanges;
}

export interface DeleteSequence {
  readonly type: "DeleteSequence";
  readonly name: string;
}

export interface LeaseSegment {
  readonly type: "LeaseSegment";
  readonly name: string;
  readonly dc: number;
  readonly size: bigint;
  readonly requestId: string;
  readonly kind: LeaseKind;
}

export interface ReturnSegment {
  readonly type: "ReturnSegment";
  readonly name: string;
  readonly dc: number;
  /** Counter range [start, end) in the DC's counter space. */
  readonly start: bigint;
  readonly end: bigint;
  /** The fence of the grant the range comes from. */
  readonly fence: Fence;
  readonly requestId: string;
}

export type Command = CreateSequence | UpdateSequence | DeleteSequence | LeaseSegment | ReturnSegment;
export type CommandType = Command["type"];

export const COMMAND_FORMAT = 1;
export const MAX_COMMAND_BYTES = 16 * 1024;
export const REQUEST_ID_PATTERN = /^[\x21-\x7e]{1,64}$/;

const isFenceNumber = (n: unknown): boolean => typeof n === "number" && Number.isSafeInteger(n) && n >= 0;

/** Checks everything that does not depend on ledger state. Undefined when valid. */
export function validateCommand(cmd: Command): string | undefined {
  if (cmd.type === "CreateSequence") {
    const errors = validateSequenceDef(cmd.def);
    if (errors.length > 0) return `invalid sequence definition: ${describeErrors(errors)}`;
    return isFenceNumber(cmd.createdAtMs) ? undefined : "createdAtMs must be a non-negative safe integer";
  }
  const nameError = validateName(cmd.name);
  if (nameError) return nameError.reason;
  switch (cmd.type) {
    case "UpdateSequence": {
      const errors = validateChanges(cmd.changes);
      return errors.length > 0 ? describeErrors(errors) : undefined;
    }
    case "DeleteSequence":
      return undefined;
    case "LeaseSegment":
      if (typeof cmd.size !== "bigint" || cmd.size < 1n) return "size must be >= 1";
      if (!LEASE_KINDS.includes(cmd.kind)) return `kind must be one of ${LEASE_KINDS.join(", ")}`;
      return checkDcAndRequest(cmd.dc, cmd.requestId);
    case "ReturnSegment":
      if (
        typeof cmd.start !== "bigint" ||
        typeof cmd.end !== "bigint" ||
        cmd.start < 0n ||
        cmd.end > INT64_MAX
      ) {
        return "start and end must lie within 0..2^63-1";
      }
      if (cmd.start >= cmd.end) return `range [${cmd.start}, ${cmd.end}) is empty: start must be < end`;
      if (!isFenceNumber(cmd.fence.term) || !isFenceNumber(cmd.fence.index)) {
        return "fence term and index must be non-negative safe integers";
      }
      return checkDcAndRequest(cmd.dc, cmd.requestId);
  }
}

function checkDcAndRequest(dc: number, requestId: string): string | undefined {
  if (!Number.isInteger(dc) || dc < 0 || dc >= MAX_DATACENTERS)
    return `dc must be between 0 and ${MAX_DATACENTERS - 1}`;
  if (typeof requestId !== "string" || !REQUEST_ID_PATTERN.test(requestId)) {
    return "requestId must be 1..64 printable ASCII characters";
  }
  return undefined;
}

export function defToJson(def: SequenceDef): Json {
  return {
    name: def.name,
    type: def.type,
    ...(def.length === undefined ? {} : { length: def.length }),
    starting: bigJson(def.starting),
    step: bigJson(def.step),
    datacenters: def.datacenters,
    layout: def.layout,
    ordering: def.ordering,
    autoDisk: def.autoDisk,
    limits: limitsToJson(def.limits),
  };
}

function limitsToJson(l: SequenceLimits): Json {
  return { maxSegmentSize: bigJson(l.maxSegmentSize) };
}

export function fenceToJson(f: Fence): Json {
  return { term: f.term, index: f.index };
}

/**
 * The canonical JSON of a lease, written out directly: the same bytes as canonicalJson gives
 * (keys in sorted order), without building and sorting an object per lease, the ledger's most
 * frequent command.
 */
export function leaseJson(cmd: LeaseSegment): string {
  return (
    `{"dc":${JSON.stringify(cmd.dc)},"kind":${JSON.stringify(cmd.kind)},"name":${JSON.stringify(cmd.name)},` +
    `"requestId":${JSON.stringify(cmd.requestId)},"size":"${bigJson(cmd.size)}","type":"LeaseSegment"}`
  );
}

function commandToJson(cmd: Command): Json {
  switch (cmd.type) {
    case "CreateSequence":
      return { type: cmd.type, def: defToJson(cmd.def), createdAtMs: cmd.createdAtMs };
    case "UpdateSequence": {
      const c = cmd.changes;
      const changes: Record<string, Json> = {};
      if (c.autoDisk !== undefined) changes["autoDisk"] = c.autoDisk;
      if (c.ordering !== undefined) changes["ordering"] = c.ordering;
      if (c.limits !== undefined) changes["limits"] = limitsToJson(c.limits);
      return { type: cmd.type, name: cmd.name, changes };
    }
    case "DeleteSequence":
      return { type: cmd.type, name: cmd.name };
    case "LeaseSegment":
      return {
        type: cmd.type,
        name: cmd.name,
        dc: cmd.dc,
        size: bigJson(cmd.size),
        requestId: cmd.requestId,
        kind: cmd.kind,
      };
    case "ReturnSegment":
      return {
        type: cmd.type,
        name: cmd.name,
        dc: cmd.dc,
        start: bigJson(cmd.start),
        end: bigJson(cmd.end),
        fence: fenceToJson(cmd.fence),
        requestId: cmd.requestId,
      };
  }
}

export function encodeCommand(cmd: Command): Uint8Array {
  const body = utf8(cmd.type === "LeaseSegment" ? leaseJson(cmd) : canonicalJson(commandToJson(cmd)));
  const out = new Uint8Array(body.length + 1);
  out[0] = COMMAND_FORMAT;
  out.set(body, 1);
  return out;
}

export type DecodeResult =
  { readonly ok: true; readonly command: Command } | { readonly ok: false; readonly message: string };

export function decodeCommand(data: Uint8Array): DecodeResult {
  if (data.length === 0) return { ok: false, message: "command is empty" };
  if (data.length > MAX_COMMAND_BYTES) {
    return { ok: false, message: `command is ${data.length} bytes, more than ${MAX_COMMAND_BYTES}` };
  }
  if (data[0] !== COMMAND_FORMAT) return { ok: false, message: `unknown command format ${data[0]}` };
  let command: Command;
  try {
    command = commandFromJson(parseJson(data.subarray(1), "command"));
  } catch (e) {
    if (e instanceof DecodeError) return { ok: false, message: e.message };
    throw e;
  }
  const invalid = validateCommand(command);
  return invalid === undefined ? { ok: true, command } : { ok: false, message: invalid };
}

const str = (o: Fields, k: string, path: string, max = 256): string => readString(o[k], `${path}.${k}`, max);

export function readLimits(v: unknown, path: string): SequenceLimits {
  const o = readObject(v, path, ["maxSegmentSize"]);
  return { maxSegmentSize: readBigint(o["maxSegmentSize"], `${path}.maxSegmentSize`) };
}

export function readFence(v: unknown, path: string): Fence {
  const o = readObject(v, path, ["term", "index"]);
  return { term: readInt(o["term"], `${path}.term`), index: readInt(o["index"], `${path}.index`) };
}

/** Reads a definition's shape and primitive types; validateSequenceDef checks the values. */
export function defFromJson(v: unknown, path: string): SequenceDef {
  const keys = [
    "name",
    "type",
    "starting",
    "step",
    "datacenters",
    "layout",
    "ordering",
    "autoDisk",
    "limits",
  ];
  const o = readObject(v, path, keys, ["length"]);
  return {
    name: str(o, "name", path),
    type: readInt(o["type"], `${path}.type`) as SequenceType,
    ...(o["length"] === undefined ? {} : { length: readInt(o["length"], `${path}.length`) }),
    starting: readBigint(o["starting"], `${path}.starting`),
    step: readBigint(o["step"], `${path}.step`),
    datacenters: readInt(o["datacenters"], `${path}.datacenters`),
    layout: str(o, "layout", path) as Layout,
    ordering: str(o, "ordering", path) as Ordering,
    autoDisk: str(o, "autoDisk", path) as AutoDisk,
    limits: readLimits(o["limits"], `${path}.limits`),
  };
}

function commandFromJson(v: unknown): Command {
  const head = readObject(
    v,
    "command",
    ["type"],
    ["def", "createdAtMs", "name", "changes", "dc", "size", "requestId", "kind", "start", "end", "fence"],
  );
  const type = head["type"];
  const p = "command";
  switch (type) {
    case "CreateSequence": {
      const o = readObject(v, p, ["type", "def", "createdAtMs"]);
      return {
        type,
        def: defFromJson(o["def"], `${p}.def`),
        createdAtMs: readInt(o["createdAtMs"], `${p}.createdAtMs`),
      };
    }
    case "UpdateSequence": {
      const o = readObject(v, p, ["type", "name", "changes"]);
      const c = readObject(o["changes"], `${p}.changes`, [], ["autoDisk", "ordering", "limits"]);
      const changes: SequenceChanges = {
        ...(c["autoDisk"] === undefined ? {} : { autoDisk: str(c, "autoDisk", `${p}.changes`) as AutoDisk }),
        ...(c["ordering"] === undefined ? {} : { ordering: str(c, "ordering", `${p}.changes`) as Ordering }),
        ...(c["limits"] === undefined ? {} : { limits: readLimits(c["limits"], `${p}.changes.limits`) }),
      };
      return { type, name: str(o, "name", p), changes };
    }
    case "DeleteSequence": {
      const o = readObject(v, p, ["type", "name"]);
      return { type, name: str(o, "name", p) };
    }
    case "LeaseSegment": {
      const o = readObject(v, p, ["type", "name", "dc", "size", "requestId", "kind"]);
      return {
        type,
        name: str(o, "name", p),
        dc: readInt(o["dc"], `${p}.dc`),
        size: readBigint(o["size"], `${p}.size`),
        requestId: str(o, "requestId", p),
        kind: str(o, "kind", p) as LeaseKind,
      };
    }
    case "ReturnSegment": {
      const o = readObject(v, p, ["type", "name", "dc", "start", "end", "fence", "requestId"]);
      return {
        type,
        name: str(o, "name", p),
        dc: readInt(o["dc"], `${p}.dc`),
        start: readBigint(o["start"], `${p}.start`),
        end: readBigint(o["end"], `${p}.end`),
        fence: readFence(o["fence"], `${p}.fence`),
        requestId: str(o, "requestId", p),
      };
    }
    default:
      throw new DecodeError(
        `unknown command type ${typeof type === "string" ? JSON.stringify(type.slice(0, 64)) : typeof type}`,
      );
  }
}
