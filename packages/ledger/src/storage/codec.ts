import { crc32 } from "node:zlib";
import type { ConfState, Entry, HardState, Snapshot } from "@dispenser/raft";

// On-disk encodings. Every record starts with a CRC32 of the rest, checked on every read: a
// corrupt record is detected, never applied.

export class CorruptRecordError extends Error {
  constructor(what: string) {
    super(`corrupt record: ${what}`);
    this.name = "CorruptRecordError";
  }
}

function seal(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.byteLength + 4);
  new DataView(out.buffer).setUint32(0, crc32(body));
  out.set(body, 4);
  return out;
}

function unseal(rec: Uint8Array, what: string): Uint8Array {
  if (rec.byteLength < 4) throw new CorruptRecordError(`${what}: too short`);
  const body = rec.subarray(4);
  const want = new DataView(rec.buffer, rec.byteOffset, 4).getUint32(0);
  if (crc32(body) !== want) throw new CorruptRecordError(`${what}: checksum mismatch`);
  return body;
}

/** Log entry: crc32 | index (u64) | term (u64) | type (u8) | data. */
export function encodeEntry(e: Entry): Uint8Array {
  const body = new Uint8Array(17 + e.data.byteLength);
  const v = new DataView(body.buffer);
  v.setBigUint64(0, BigInt(e.index));
  v.setBigUint64(8, BigInt(e.term));
  v.setUint8(16, e.type);
  body.set(e.data, 17);
  return seal(body);
}

export function decodeEntry(rec: Uint8Array): Entry {
  const body = unseal(rec, "log entry");
  if (body.byteLength < 17) throw new CorruptRecordError("log entry: truncated header");
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const type = v.getUint8(16);
  if (type !== 0 && type !== 1) throw new CorruptRecordError(`log entry: unknown type ${type}`);
  return {
    index: Number(v.getBigUint64(0)),
    term: Number(v.getBigUint64(8)),
    type: type,
    data: body.slice(17),
  };
}

const enc = new TextEncoder();
const dec = new TextDecoder();

function encodeJson(value: unknown): Uint8Array {
  return seal(enc.encode(JSON.stringify(value)));
}

function decodeJson(rec: Uint8Array, what: string): unknown {
  const body = unseal(rec, what);
  try {
    return JSON.parse(dec.decode(body));
  } catch {
    throw new CorruptRecordError(`${what}: not JSON`);
  }
}

function isNat(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
}

export function encodeHardState(hs: HardState): Uint8Array {
  return encodeJson(hs);
}

export function decodeHardState(rec: Uint8Array): HardState {
  const o = decodeJson(rec, "hard state") as Record<string, unknown>;
  if (!isNat(o.term) || !isNat(o.vote) || !isNat(o.commit))
    throw new CorruptRecordError("hard state: bad fields");
  return { term: o.term, vote: o.vote, commit: o.commit };
}

function checkConf(c: unknown): ConfState {
  const o = c as Record<string, unknown> | null;
  if (!o || !Array.isArray(o.voters) || !Array.isArray(o.learners))
    throw new CorruptRecordError("conf state");
  if (!o.voters.every(isNat) || !o.learners.every(isNat)) throw new CorruptRecordError("conf state ids");
  return { voters: o.voters, learners: o.learners };
}

/** Snapshot: crc32 | meta length (u32) | meta JSON | data. */
export function encodeSnapshot(s: Snapshot): Uint8Array {
  const meta = enc.encode(JSON.stringify(s.meta));
  const body = new Uint8Array(4 + meta.byteLength + s.data.byteLength);
  new DataView(body.buffer).setUint32(0, meta.byteLength);
  body.set(meta, 4);
  body.set(s.data, 4 + meta.byteLength);
  return seal(body);
}

export function decodeSnapshot(rec: Uint8Array): Snapshot {
  const body = unseal(rec, "snapshot");
  if (body.byteLength < 4) throw new CorruptRecordError("snapshot: truncated");
  const n = new DataView(body.buffer, body.byteOffset, 4).getUint32(0);
  if (4 + n > body.byteLength) throw new CorruptRecordError("snapshot: meta length");
  let meta: Record<string, unknown>;
  try {
    meta = JSON.parse(dec.decode(body.subarray(4, 4 + n))) as Record<string, unknown>;
  } catch {
    throw new CorruptRecordError("snapshot: meta not JSON");
  }
  if (!isNat(meta.index) || !isNat(meta.term)) throw new CorruptRecordError("snapshot: meta fields");
  return {
    meta: { index: meta.index, term: meta.term, confState: checkConf(meta.confState) },
    data: body.slice(4 + n),
  };
}

/** Who this data directory belongs to: a directory is never reused by another node or cluster. */
export interface Identity {
  readonly clusterId: string;
  readonly nodeId: number;
}

/** An identity with the random incarnation drawn when the directory was created. */
export interface StoredIdentity extends Identity {
  /** Changes only when a node's data is lost: peers refuse a member whose incarnation changed. */
  readonly incarnation: string;
}

export function encodeIdentity(id: StoredIdentity): Uint8Array {
  return encodeJson(id);
}

export function decodeIdentity(rec: Uint8Array): StoredIdentity {
  const o = decodeJson(rec, "identity") as Record<string, unknown>;
  if (typeof o.clusterId !== "string" || !isNat(o.nodeId) || typeof o.incarnation !== "string") {
    throw new CorruptRecordError("identity: bad fields");
  }
  return { clusterId: o.clusterId, nodeId: o.nodeId, incarnation: o.incarnation };
}
