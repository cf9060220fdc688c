// Key layout of the Redis plane. Every key of one sequence carries the hash tag `{seq:<name>}`, so
// they all map to one slot and a Lua script may touch any of them (Redis Cluster refuses scripts
// whose keys span slots). Names are checked before a key is built: a `{` or `}` in a name would
// change the tag, and an unbounded name would be an unbounded key.

import { MAX_DATACENTERS, sequenceNameError } from "@dispenser/domain";
import { RedisPlaneError } from "./errors.js";

/** Printable ASCII without spaces, so an edge id reads the same in logs and in hash fields. */
export const EDGE_ID_PATTERN = /^[\x21-\x7e]{1,64}$/;
export function checkSequenceName(name: string): void {
  const err = sequenceNameError(name);
  if (err !== undefined) throw new RedisPlaneError("invalid-argument", err);
}

export function checkDc(dc: number): void {
  if (!Number.isInteger(dc) || dc < 0 || dc >= MAX_DATACENTERS)
    throw new RedisPlaneError(
      "invalid-argument",
      `dc must be an integer in 0..${MAX_DATACENTERS - 1}, got ${dc}`,
    );
}

export function checkEdgeId(edgeId: string): void {
  if (typeof edgeId !== "string" || !EDGE_ID_PATTERN.test(edgeId))
    throw new RedisPlaneError(
      "invalid-argument",
      `edge id must be 1..64 printable ASCII characters without spaces, got ${JSON.stringify(edgeId)}`,
    );
}

/** `{seq:<name>}`: the hash tag shared by every key of the sequence. */
export function sequenceTag(name: string): string {
  checkSequenceName(name);
  return `{seq:${name}}`;
}

/** The catalog mirror of a sequence definition: a hash of its fields plus `revision`. */
export function definitionKey(name: string): string {
  return `${sequenceTag(name)}:def`;
}

/** Per-edge counters of one (sequence, dc): fields `<edgeId>:generated|wasted|seen`. */
export function edgesKey(name: string, dc: number): string {
  checkDc(dc);
  return `${sequenceTag(name)}:dc:${dc}:edges`;
}

/** The reserve pool of one (sequence, dc): the ledger windows its edges carve from (pool.ts). */
export function poolKey(name: string, dc: number): string {
  checkDc(dc);
  return `${sequenceTag(name)}:dc:${dc}:pool`;
}

/** CRC16/XMODEM, as Redis Cluster hashes keys to slots. */
function crc16(s: string): number {
  let crc = 0;
  for (const byte of Buffer.from(s, "utf8")) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The Redis Cluster slot of a key: of its hash tag when it has a non-empty one. */
export function keySlot(key: string): number {
  const open = key.indexOf("{");
  if (open >= 0) {
    const close = key.indexOf("}", open + 1);
    if (close > open + 1) return crc16(key.slice(open + 1, close)) % 16384;
  }
  return crc16(key) % 16384;
}

/** What the DC's edges remember of the ledger for one (sequence, dc): its identity and their issued mark. */
export function guardKey(name: string, dc: number): string {
  checkDc(dc);
  return `${sequenceTag(name)}:dc:${dc}:guard`;
}
