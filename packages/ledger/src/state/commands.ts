// The ledger's Raft commands and their encoding: one format byte, then canonical UTF-8 JSON with
// bigints as decimal strings. Decoding is strict (unknown fields, wrong types and out-of-range values
// are rejected with a reason) and never throws, so a malformed entry fails the same way everywhere.
// A new field therefore needs a new format byte: old replicas must not silently ignore it.
// Format 2 added the return token of a lease and a return, the key fingerprint of a type 1 lease,
// the expected revision of an update or delete, and the InitCluster and RaiseMark commands;
// entries of format 1 (written before) still decode, with no token (their grants can never be
// returned) and no expectation.

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
} from "@dispenser/domain";
import {
  describeErrors,
  MAX_DATACENTERS,
  validateChanges,
  validateName,
  validateSequenceDef,
} from "@dispenser/domain";
import { INT64_MAX } from "@dispenser/domain";

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
  /** Applies only if the sequence is at this revision (a compare-and-set decided by the log). */
  readonly expectedRevision?: bigint;
}

export interface DeleteSequence {
  readonly type: "DeleteSequence";
  readonly name: string;
  readonly expectedRevision?: bigint;
}

export interface LeaseSegment {
  readonly type: "LeaseSegment";
  readonly name: string;
  readonly dc: number;
  readonly size: bigint;
  readonly requestId: string;
  readonly kind: LeaseKind;
  /**
   * A secret minted by the proposing leader (RETURN_TOKEN_PATTERN), kept with the grant and
   * answered only to the lease's requester: a return must present it. Empty in entries of format 1:
   * such a grant is never taken back.
   */
  readonly returnToken: string;
  /** Type 1: the fingerprint of the permutation secret the leasing edge maps counters with. */
  readonly keyFingerprint?: string;
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
  /** The grant's return token: only its holder can give a range back. */
  readonly returnToken: string;
  readonly requestId: string;
}

/** Gives the cluster its identity, once: the first InitCluster committed wins, later ones change nothing. */
export interface InitCluster {
  readonly type: "InitCluster";
  /** Drawn at random by the leader that proposes it (IDENTITY_PATTERN). */
  readonly identity: string;
}

/**
 * Raises a (sequence, dc) mark to at least `to` (counter space): nothing below it is granted
 * again. The way out after restoring an old backup: restart above everything issued since.
 */
export interface RaiseMark {
  readonly type: "RaiseMark";
  readonly name: string;
  readonly dc: number;
  readonly to: bigint;
}

/** Ends the hold of a cluster restored from a backup: every (sequence, dc) leases again. */
export interface ReleaseRestore {
  readonly type: "ReleaseRestore";
}

export type Command =
  | CreateSequence
  | UpdateSequence
  | DeleteSequence
  | LeaseSegment
  | ReturnSegment
  | InitCluster
  | RaiseMark
  | ReleaseRestore;
export type CommandType = Command["type"];

export const COMMAND_FORMAT = 2;
/** Formats a replica decodes: the current one and those written before it. */
const DECODABLE_FORMATS = new Set([1, COMMAND_FORMAT]);
export const MAX_COMMAND_BYTES = 16 * 1024;
export const REQUEST_ID_PATTERN = /^[\x21-\x7e]{1,64}$/;
/** 128 random bits in hex; the empty token (format 1) authorises nothing. */
export const RETURN_TOKEN_PATTERN = /^([0-9a-f]{32})?$/;
/** A cluster identity: 128 random bits in hex. */
export const IDENTITY_PATTERN = /^[0-9a-f]{32}$/;
/** 64 bits of an HMAC of the permutation secret, in hex. */
export const KEY_FINGERPRINT_PATTERN = /^[0-9a-f]{16}$/;

const isFenceNumber = (n: unknown): boolean => typeof n === "number" && Number.isSafeInteger(n) && n >= 0;

/** Checks everything that does not depend on ledger state. Undefined when valid. */
export function validateCommand(cmd: Command): string | undefined {
  if (cmd.type === "ReleaseRestore") return undefined;
  if (cmd.type === "InitCluster") {
    return typeof cmd.identity === "string" && IDENTITY_PATTERN.test(cmd.identity)
      ? undefined
      : "identity must be 32 hex digits";
  }
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
      if (errors.length > 0) return describeErrors(errors);
      return checkExpected(cmd.expectedRevision);
    }
    case "DeleteSequence":
      return checkExpected(cmd.expectedRevision);
    case "RaiseMark":
      if (typeof cmd.to !== "bigint" || cmd.to < 0n || cmd.to > INT64_MAX)
        return "to must lie within 0..2^63-1";
      return checkDc(cmd.dc);
    case "LeaseSegment":
      if (typeof cmd.size !== "bigint" || cmd.size < 1n) return "size must be >= 1";
      if (!LEASE_KINDS.includes(cmd.kind)) return `kind must be one of ${LEASE_KINDS.join(", ")}`;
      if (typeof cmd.returnToken !== "string" || !RETURN_TOKEN_PATTERN.test(cmd.returnToken))
        return "returnToken must be 32 hex digits";
      if (
        cmd.keyFingerprint !== undefined &&
        (typeof cmd.keyFingerprint !== "string" || !KEY_FINGERPRINT_PATTERN.test(cmd.keyFingerprint))
      )
        return "keyFingerprint must be 16 hex digits";
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
      if (typeof cmd.returnToken !== "string" || !RETURN_TOKEN_PATTERN.test(cmd.returnToken))
        return "returnToken must be 32 hex digits";
      return checkDcAndRequest(cmd.dc, cmd.requestId);
  }
}

function checkExpected(rev: bigint | undefined): string | undefined {
  return rev === undefined || (typeof rev === "bigint" && rev >= 1n && rev <= INT64_MAX)
    ? undefined
    : "expectedRevision must be between 1 and 2^63-1";
}

function checkDc(dc: number): string | undefined {
  return Number.isInteger(dc) && dc >= 0 && dc < MAX_DATACENTERS
    ? undefined
    : `dc must be between 0 and ${MAX_DATACENTERS - 1}`;
}

function checkDcAndRequest(dc: number, requestId: string): string | undefined {
  const bad = checkDc(dc);
  if (bad !== undefined) return bad;
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
    ...(def.keyFingerprint === undefined ? {} : { keyFingerprint: def.keyFingerprint }),
    ...(def.reserveSeconds === undefined ? {} : { reserveSeconds: def.reserveSeconds }),
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
  const fp =
    cmd.keyFingerprint === undefined ? "" : `"keyFingerprint":${JSON.stringify(cmd.keyFingerprint)},`;
  return (
    `{"dc":${JSON.stringify(cmd.dc)},${fp}"kind":${JSON.stringify(cmd.kind)},"name":${JSON.stringify(cmd.name)},` +
    `"requestId":${JSON.stringify(cmd.requestId)},"returnToken":${JSON.stringify(cmd.returnToken)},` +
    `"size":"${bigJson(cmd.size)}","type":"LeaseSegment"}`
  );
}

const expectedJson = (rev: bigint | undefined): Record<string, Json> =>
  rev === undefined ? {} : { expectedRevision: bigJson(rev) };

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
      if (c.reserveSeconds !== undefined) changes["reserveSeconds"] = c.reserveSeconds;
      return { type: cmd.type, name: cmd.name, changes, ...expectedJson(cmd.expectedRevision) };
    }
    case "DeleteSequence":
      return { type: cmd.type, name: cmd.name, ...expectedJson(cmd.expectedRevision) };
    case "LeaseSegment":
      return {
        type: cmd.type,
        name: cmd.name,
        dc: cmd.dc,
        size: bigJson(cmd.size),
        requestId: cmd.requestId,
        kind: cmd.kind,
        returnToken: cmd.returnToken,
        ...(cmd.keyFingerprint === undefined ? {} : { keyFingerprint: cmd.keyFingerprint }),
      };
    case "ReturnSegment":
      return {
        type: cmd.type,
        name: cmd.name,
        dc: cmd.dc,
        start: bigJson(cmd.start),
        end: bigJson(cmd.end),
        fence: fenceToJson(cmd.fence),
        returnToken: cmd.returnToken,
        requestId: cmd.requestId,
      };
    case "InitCluster":
      return { type: cmd.type, identity: cmd.identity };
    case "ReleaseRestore":
      return { type: cmd.type };
    case "RaiseMark":
      return { type: cmd.type, name: cmd.name, dc: cmd.dc, to: bigJson(cmd.to) };
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
  const format = data[0]!;
  if (!DECODABLE_FORMATS.has(format)) return { ok: false, message: `unknown command format ${format}` };
  let command: Command;
  try {
    command = commandFromJson(parseJson(data.subarray(1), "command"), format);
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
  const o = readObject(v, path, keys, ["length", "keyFingerprint", "reserveSeconds"]);
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
    ...(o["keyFingerprint"] === undefined ? {} : { keyFingerprint: str(o, "keyFingerprint", path, 16) }),
    ...(o["reserveSeconds"] === undefined
      ? {}
      : { reserveSeconds: readInt(o["reserveSeconds"], `${path}.reserveSeconds`) }),
  };
}

const readExpected = (o: Fields, path: string): { expectedRevision?: bigint } =>
  o["expectedRevision"] === undefined
    ? {}
    : { expectedRevision: readBigint(o["expectedRevision"], `${path}.expectedRevision`) };

function commandFromJson(v: unknown, format: number): Command {
  const head = readObject(
    v,
    "command",
    ["type"],
    [
      "def",
      "createdAtMs",
      "name",
      "changes",
      "dc",
      "size",
      "requestId",
      "kind",
      "start",
      "end",
      "fence",
      "returnToken",
      "keyFingerprint",
      "expectedRevision",
      "identity",
      "to",
    ],
  );
  const type = head["type"];
  const p = "command";
  // Format 1 knew none of the fields format 2 added: such an entry must not carry them.
  const v2 = <T extends string>(...keys: T[]): T[] => (format >= 2 ? keys : []);
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
      const o = readObject(v, p, ["type", "name", "changes"], v2("expectedRevision"));
      const c = readObject(
        o["changes"],
        `${p}.changes`,
        [],
        ["autoDisk", "ordering", "limits", "reserveSeconds"],
      );
      const changes: SequenceChanges = {
        ...(c["autoDisk"] === undefined ? {} : { autoDisk: str(c, "autoDisk", `${p}.changes`) as AutoDisk }),
        ...(c["ordering"] === undefined ? {} : { ordering: str(c, "ordering", `${p}.changes`) as Ordering }),
        ...(c["limits"] === undefined ? {} : { limits: readLimits(c["limits"], `${p}.changes.limits`) }),
        ...(c["reserveSeconds"] === undefined
          ? {}
          : { reserveSeconds: readInt(c["reserveSeconds"], `${p}.changes.reserveSeconds`) }),
      };
      return { type, name: str(o, "name", p), changes, ...readExpected(o, p) };
    }
    case "DeleteSequence": {
      const o = readObject(v, p, ["type", "name"], v2("expectedRevision"));
      return { type, name: str(o, "name", p), ...readExpected(o, p) };
    }
    case "LeaseSegment": {
      const base = ["type", "name", "dc", "size", "requestId", "kind"];
      const o = readObject(v, p, format >= 2 ? [...base, "returnToken"] : base, v2("keyFingerprint"));
      return {
        type,
        name: str(o, "name", p),
        dc: readInt(o["dc"], `${p}.dc`),
        size: readBigint(o["size"], `${p}.size`),
        requestId: str(o, "requestId", p),
        kind: str(o, "kind", p) as LeaseKind,
        returnToken: format >= 2 ? str(o, "returnToken", p, 32) : "",
        ...(o["keyFingerprint"] === undefined ? {} : { keyFingerprint: str(o, "keyFingerprint", p, 16) }),
      };
    }
    case "ReturnSegment": {
      const base = ["type", "name", "dc", "start", "end", "fence", "requestId"];
      const o = readObject(v, p, format >= 2 ? [...base, "returnToken"] : base);
      return {
        type,
        name: str(o, "name", p),
        dc: readInt(o["dc"], `${p}.dc`),
        start: readBigint(o["start"], `${p}.start`),
        end: readBigint(o["end"], `${p}.end`),
        fence: readFence(o["fence"], `${p}.fence`),
        returnToken: format >= 2 ? str(o, "returnToken", p, 32) : "",
        requestId: str(o, "requestId", p),
      };
    }
    case "ReleaseRestore": {
      if (format < 2) break;
      readObject(v, p, ["type"]);
      return { type };
    }
    case "InitCluster": {
      if (format < 2) break;
      const o = readObject(v, p, ["type", "identity"]);
      return { type, identity: str(o, "identity", p, 32) };
    }
    case "RaiseMark": {
      if (format < 2) break;
      const o = readObject(v, p, ["type", "name", "dc", "to"]);
      return {
        type,
        name: str(o, "name", p),
        dc: readInt(o["dc"], `${p}.dc`),
        to: readBigint(o["to"], `${p}.to`),
      };
    }
  }
  throw new DecodeError(
    `unknown command type ${typeof type === "string" ? JSON.stringify(type.slice(0, 64)) : typeof type}`,
  );
}
