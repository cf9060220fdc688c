// Key layout of a ledger node's LevelDB. Log keys sort by index: a fixed-width hex index.

export const KEY_HARD_STATE = "m/hardstate";
export const KEY_SNAPSHOT = "m/snapshot";
export const KEY_IDENTITY = "m/identity";
/** The lowest log index that may still be on disk: compaction deletes from here. */
export const KEY_LOG_START = "m/logstart";
/** Per peer: the incarnation first seen from it. */
export const PEER_PREFIX = "p/";
export const PEER_END = "p0";
export const LOG_PREFIX = "l/";
/** Upper bound of the log key range (exclusive). */
export const LOG_END = "l0";

export function logKey(index: number): string {
  return LOG_PREFIX + index.toString(16).padStart(16, "0");
}

export function peerKey(id: number): string {
  return PEER_PREFIX + id.toString(16).padStart(16, "0");
}

/** Snapshot data, chunk by chunk, under a generation drawn per snapshot: s/<gen>/<chunk>. */
export const CHUNK_PREFIX = "s/";
export const CHUNK_END = "s0";

export function chunkKey(gen: string, i: number): string {
  return `${CHUNK_PREFIX}${gen}/${i.toString(16).padStart(8, "0")}`;
}
