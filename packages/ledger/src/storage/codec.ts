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

/**
 * A single log entry: crc32 | index (u64) | term (u64) | type (u8) | data. Written by earlier
 * versions, one record per entry; still read (as a run of one), never written.
 */
export function encodeEntry(e: Entry): Uint8Array {
  const body = new Uint8Array(17 + e.data.byteLength);
  const v = new DataView(body.buffer);
  v.setBigUint64(0, BigInt(e.index));
  v.setBigUint64(8, BigInt(e.term));
  v.setUint8(16, e.type);
  body.set(e.data, 17);
  return seal(body);
}

function decodeEntryBody(body: Uint8Array): Entry {
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

/** Marks a run record; a single-entry record starts with the top byte of its index, always 0. */
const RUN_MARK = 0x52;
const RUN_HEADER = 13;
const RUN_ENTRY_HEADER = 13;
const TWO_32 = 2 ** 32;

/**
 * A run of contiguous entries, the entries of one Ready stored as one record:
 * crc32 | 0x52 | first index (u64) | count (u32) | per entry: term (u64) | type (u8) | length (u32) | data.
 * One record instead of one per entry keeps a 64-entry write from costing 64 LevelDB operations.
 */
export function encodeRun(entries: readonly Entry[]): Uint8Array {
  let size = 4 + RUN_HEADER;
  for (const e of entries) size += RUN_ENTRY_HEADER + e.data.byteLength;
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  const first = entries[0]!.index;
  v.setUint8(4, RUN_MARK);
  v.setUint32(5, Math.floor(first / TWO_32));
  v.setUint32(9, first >>> 0);
  v.setUint32(13, entries.length);
  let off = 4 + RUN_HEADER;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    if (e.index !== first + i) throw new Error(`run of entries is not contiguous at ${e.index}`);
    v.setUint32(off, Math.floor(e.term / TWO_32));
    v.setUint32(off + 4, e.term >>> 0);
    v.setUint8(off + 8, e.type);
    v.setUint32(off + 9, e.data.byteLength);
    out.set(e.data, off + RUN_ENTRY_HEADER);
    off += RUN_ENTRY_HEADER + e.data.byteLength;
  }
  v.setUint32(0, crc32(out.subarray(4)));
  return out;
}

/** The entries of a run record (or of a single-entry record), in index order. */
export function decodeRun(rec: Uint8Array): Entry[] {
  const body = unseal(rec, "log record");
  if (body.byteLength > 0 && body[0] !== RUN_MARK) return [decodeEntryBody(body)];
  if (body.byteLength < RUN_HEADER) throw new CorruptRecordError("log run: truncated header");
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const first = v.getUint32(1) * TWO_32 + v.getUint32(5);
  const count = v.getUint32(9);
  const out: Entry[] = [];
  let off = RUN_HEADER;
  for (let i = 0; i < count; i++) {
    if (off + RUN_ENTRY_HEADER > body.byteLength) throw new CorruptRecordError("log run: truncated entry");
    const term = v.getUint32(off) * TWO_32 + v.getUint32(off + 4);
    const type = v.getUint8(off + 8);
    if (type !== 0 && type !== 1) throw new CorruptRecordError(`log run: unknown entry type ${type}`);
    const len = v.getUint32(off + 9);
    const start = off + RUN_ENTRY_HEADER;
    if (start + len > body.byteLength) throw new CorruptRecordError("log run: entry data truncated");
    out.push({ index: first + i, term, type, data: body.slice(start, start + len) });
    off = start + len;
  }
  if (off !== body.byteLength) throw new CorruptRecordError("log run: trailing bytes");
  if (count === 0) throw new CorruptRecordError("log run: empty");
  return out;
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

/**
 * Where a snapshot's data lies: `chunks` records under the key prefix of `gen`, `bytes` in all.
 * A snapshot is stored in chunks, not one value: it can reach hundreds of megabytes.
 */
export interface SnapshotRef {
  readonly gen: string;
  readonly chunks: number;
  readonly bytes: number;
}

/**
 * Snapshot record: crc32 | meta length (u32) | meta JSON | data. The meta of a chunked snapshot
 * holds its SnapshotRef and the record no data; earlier versions stored the data inline (read).
 */
export function encodeSnapshot(s: Snapshot, ref?: SnapshotRef): Uint8Array {
  const meta = enc.encode(JSON.stringify(ref ? { ...s.meta, ...ref } : s.meta));
  const data = ref ? new Uint8Array() : s.data;
  const body = new Uint8Array(4 + meta.byteLength + data.byteLength);
  new DataView(body.buffer).setUint32(0, meta.byteLength);
  body.set(meta, 4);
  body.set(data, 4 + meta.byteLength);
  return seal(body);
}

/** The snapshot of a record; `ref` says where its data is when it is chunked (data then empty). */
export function decodeSnapshot(rec: Uint8Array): { snapshot: Snapshot; ref?: SnapshotRef } {
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
  const snapshot = {
    meta: { index: meta.index, term: meta.term, confState: checkConf(meta.confState) },
    data: body.slice(4 + n),
  };
  if (meta.gen === undefined) return { snapshot };
  if (
    typeof meta.gen !== "string" ||
    !/^[0-9a-f]{16}$/.test(meta.gen) ||
    !isNat(meta.chunks) ||
    !isNat(meta.bytes)
  )
    throw new CorruptRecordError("snapshot: chunk reference");
  return { snapshot, ref: { gen: meta.gen, chunks: meta.chunks, bytes: meta.bytes } };
}

/** One chunk of a snapshot's data: crc32 | bytes. */
export function encodeChunk(data: Uint8Array): Uint8Array {
  return seal(data);
}

export function decodeChunk(rec: Uint8Array): Uint8Array {
  return unseal(rec, "snapshot chunk");
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
