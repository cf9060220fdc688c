import type { ConfState, Entry, HardState, Ready, Snapshot, Storage } from "@dispenser/raft";
import { EMPTY_HARD_STATE, MemoryStorage, needsWrite } from "@dispenser/raft";
import { Level } from "level";
import type { Identity, SnapshotRef } from "./codec.js";
import {
  CorruptRecordError,
  decodeChunk,
  decodeHardState,
  decodeIdentity,
  decodeRun,
  decodeSnapshot,
  encodeChunk,
  encodeHardState,
  encodeIdentity,
  encodeRun,
  encodeSnapshot,
} from "./codec.js";
import { randomBytes } from "node:crypto";
import {
  CHUNK_END,
  CHUNK_PREFIX,
  chunkKey,
  KEY_HARD_STATE,
  KEY_IDENTITY,
  KEY_LOG_START,
  KEY_SNAPSHOT,
  LOG_END,
  logKey,
  PEER_END,
  PEER_PREFIX,
  peerKey,
} from "./keys.js";

/** The log on disk breaks an invariant: the node must not vote or serve with it. */
export class StorageCorruptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StorageCorruptError";
  }
}

type Op = { type: "put"; key: string; value: Uint8Array } | { type: "del"; key: string };

/** A snapshot's data is stored in records of this size. */
const STORE_CHUNK_BYTES = 1 << 20;
/** A staged snapshot is written in synced batches of about this size. */
const STAGE_BATCH_BYTES = 8 << 20;

/** A snapshot's data written as chunks but not yet the node's snapshot (see stageSnapshot). */
export interface StagedSnapshot {
  readonly ref: SnapshotRef;
}

/**
 * A node's durable Raft state in LevelDB: log entries, hard state, latest snapshot, identity.
 * The log since the last snapshot is mirrored in memory (it is bounded by compaction) and served
 * to the core from there; the mirror is updated only after a write is synced. Any write error is
 * fatal to the caller: a failed fsync is never retried (the page cache state is unknown after it).
 *
 * The log is stored as runs: the entries of one Ready in one record keyed by its first index.
 * A run replaces every entry from its first index on, so the log is the runs read in key order,
 * each cutting what came before it at its first index; writing a run deletes the records of any
 * run that starts after it (the suffix it overwrote), so no stale run can come back on a restart.
 */
export class LevelStorage implements Storage {
  private readonly mem = new MemoryStorage();
  private hard: HardState = EMPTY_HARD_STATE;
  /** `hard` moved only its commit index since it was last written (see `persist`). */
  private hardDirty = false;
  /** Set when this directory had no state at open. */
  readonly wasEmpty: boolean;
  /** Lowest log key possibly on disk (records below it were deleted). */
  private logStart = 1;
  /** First indexes of the run records on disk, ascending (bounded by compaction, like the log). */
  private runStarts: number[] = [];
  private pendingLogStart: number | undefined;
  /** This directory's incarnation: drawn once, when it was created. */
  incarnation = "";
  /** Peer id → the incarnation first seen from it. */
  private readonly peerIncarnations = new Map<number, string>();
  /** Where the current snapshot's chunks are; undefined for an inline one (or none). */
  private snapRef: SnapshotRef | undefined;

  private constructor(
    private readonly db: Level<string, Uint8Array>,
    wasEmpty: boolean,
  ) {
    this.wasEmpty = wasEmpty;
  }

  /** The incarnation recorded for a peer, if any. */
  peerIncarnation(id: number): string | undefined {
    return this.peerIncarnations.get(id);
  }

  /** Record a peer's incarnation the first time it is seen (synced, so a restart remembers). */
  async recordPeerIncarnation(id: number, incarnation: string): Promise<void> {
    if (this.peerIncarnations.has(id)) return;
    this.peerIncarnations.set(id, incarnation);
    await this.db.put(peerKey(id), new TextEncoder().encode(incarnation), { sync: true });
  }

  /**
   * Open (creating if needed) and verify: checksums, contiguous indexes, terms never decreasing,
   * commit within the log. Throws StorageCorruptError when any check fails.
   */
  static async open(dir: string, identity: Identity): Promise<LevelStorage> {
    const db = new Level<string, Uint8Array>(dir, { keyEncoding: "utf8", valueEncoding: "view" });
    await db.open();
    try {
      const idRec = await db.get(KEY_IDENTITY);
      const snapRec = await db.get(KEY_SNAPSHOT);
      const hardRec = await db.get(KEY_HARD_STATE);
      let incarnation: string;
      if (idRec) {
        const have = decodeIdentity(idRec);
        if (have.clusterId !== identity.clusterId || have.nodeId !== identity.nodeId) {
          throw new StorageCorruptError(
            `data directory ${dir} belongs to node ${have.nodeId} of cluster ${have.clusterId}, not node ${identity.nodeId} of ${identity.clusterId}`,
          );
        }
        incarnation = have.incarnation;
      } else {
        incarnation = randomBytes(8).toString("hex");
        await db.put(KEY_IDENTITY, encodeIdentity({ ...identity, incarnation }), { sync: true });
      }
      const s = new LevelStorage(db, !snapRec && !hardRec);
      s.incarnation = incarnation;
      for await (const [key, value] of db.iterator({ gte: PEER_PREFIX, lt: PEER_END })) {
        s.peerIncarnations.set(parseInt(key.slice(PEER_PREFIX.length), 16), new TextDecoder().decode(value));
      }
      if (snapRec) {
        const { snapshot, ref } = decodeSnapshot(snapRec);
        if (ref) {
          s.mem.applySnapshot({ ...snapshot, data: await readChunks(db, ref) });
          s.snapRef = ref;
        } else s.mem.applySnapshot(snapshot);
      }
      // Chunks of any other generation are left from a snapshot staged and never adopted.
      const stale: string[] = [];
      const keep = s.snapRef ? `${CHUNK_PREFIX}${s.snapRef.gen}/` : undefined;
      for await (const key of db.keys({ gte: CHUNK_PREFIX, lt: CHUNK_END }))
        if (keep === undefined || !key.startsWith(keep)) stale.push(key);
      if (stale.length > 0) await db.batch(stale.map((key) => ({ type: "del" as const, key })));
      const snap = s.mem.snapshot().meta;
      const base = { index: snap.index, term: snap.term };
      const entries: Entry[] = [];
      // Read from the lowest record still on disk: below it are only the deletion markers of a
      // long history (a million of them cost a second to step over). Entries under the snapshot
      // are dead; the records holding them stay until the next compaction.
      const startRec = await db.get(KEY_LOG_START);
      s.logStart = startRec ? Number(new TextDecoder().decode(startRec)) : 1;
      for await (const [key, value] of db.iterator({ gte: logKey(s.logStart), lt: LOG_END })) {
        const run = decodeRun(value);
        const first = run[0]!.index;
        if (key !== logKey(first)) throw new StorageCorruptError(`log key ${key} holds a run from ${first}`);
        s.runStarts.push(first);
        // This run replaces everything from its first index on.
        entries.length = Math.max(0, Math.min(entries.length, first - (base.index + 1)));
        for (const e of run) {
          if (e.index <= base.index) continue;
          const prev = entries[entries.length - 1] ?? base;
          if (e.index !== prev.index + 1)
            throw new StorageCorruptError(`log gap: entry ${e.index} follows ${prev.index}`);
          if (e.term < prev.term)
            throw new StorageCorruptError(`log term goes down at ${e.index}: ${e.term} < ${prev.term}`);
          entries.push(e);
        }
      }
      const prev = entries[entries.length - 1] ?? base;
      s.mem.append(entries);
      if (hardRec) {
        const hs = decodeHardState(hardRec);
        if (hs.commit > s.mem.lastIndex() || hs.commit < snap.index) {
          throw new StorageCorruptError(
            `commit ${hs.commit} outside the log [${snap.index}, ${s.mem.lastIndex()}]`,
          );
        }
        if (hs.term < prev.term)
          throw new StorageCorruptError(`hard state term ${hs.term} below last entry term ${prev.term}`);
        s.hard = hs;
        s.mem.setHardState(hs);
      }
      return s;
    } catch (e) {
      await db.close();
      if (e instanceof CorruptRecordError) throw new StorageCorruptError(e.message);
      throw e;
    }
  }

  async close(): Promise<void> {
    // A clean stop keeps the latest commit index, so a restart replays everything it had applied.
    if (this.hardDirty)
      await this.write([{ type: "put", key: KEY_HARD_STATE, value: encodeHardState(this.hard) }], false);
    await this.db.close();
  }

  // ---------------------------------------------------------------- Storage (read side)

  initialState(): { hardState: HardState; confState: ConfState } {
    return this.mem.initialState();
  }
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.mem.entries(lo, hi, maxBytes);
  }
  term(index: number): number {
    return this.mem.term(index);
  }
  firstIndex(): number {
    return this.mem.firstIndex();
  }
  lastIndex(): number {
    return this.mem.lastIndex();
  }
  snapshot(): Snapshot {
    return this.mem.snapshot();
  }
  hardState(): HardState {
    return this.hard;
  }

  // ---------------------------------------------------------------- writes

  /** Write the first state of a new cluster member: a snapshot holding the configuration. */
  async bootstrap(snapshot: Snapshot, hardState: HardState): Promise<void> {
    const { ops, ref } = this.snapshotOps(snapshot);
    await this.write([...ops, { type: "put", key: KEY_HARD_STATE, value: encodeHardState(hardState) }]);
    this.snapRef = ref;
    this.mem.applySnapshot(snapshot);
    this.mem.setHardState(hardState);
    this.hard = hardState;
  }

  /** Take a hard state that moved only its commit index; it is written with the next write. */
  keepHardState(hs: HardState): void {
    this.hard = hs;
    this.hardDirty = true;
  }

  /** Persist what a Ready asks for, as one synced batch, then make it visible to the core. */
  async persist(rd: Ready): Promise<void> {
    if (!needsWrite(rd)) {
      if (rd.hardState) this.keepHardState(rd.hardState);
      return;
    }
    const ops: Op[] = [];
    let starts = this.runStarts;
    let ref: SnapshotRef | undefined;
    if (rd.snapshot) {
      // A leader's snapshot replaces the whole log.
      const written = this.snapshotOps(rd.snapshot);
      ref = written.ref;
      ops.push(...written.ops, ...this.dropOps(this.snapRef));
      for (const k of starts) ops.push({ type: "del", key: logKey(k) });
      starts = [];
      this.pendingLogStart = rd.snapshot.meta.index + 1;
      ops.push({
        type: "put",
        key: KEY_LOG_START,
        value: new TextEncoder().encode(String(this.pendingLogStart)),
      });
    }
    if (rd.entries.length > 0) {
      const first = rd.entries[0]!.index;
      ops.push({ type: "put", key: logKey(first), value: encodeRun(rd.entries) });
      // Runs starting after this one hold a suffix it overwrites: they go in the same batch.
      let keep = starts.length;
      while (keep > 0 && starts[keep - 1]! >= first) keep--;
      for (let i = keep; i < starts.length; i++)
        if (starts[i] !== first) ops.push({ type: "del", key: logKey(starts[i]!) });
      starts = starts.slice(0, keep);
      starts.push(first);
    }
    const hs = rd.hardState ?? (this.hardDirty ? this.hard : undefined);
    if (hs) ops.push({ type: "put", key: KEY_HARD_STATE, value: encodeHardState(hs) });
    await this.write(ops, true);
    this.runStarts = starts;
    if (rd.snapshot) {
      this.snapRef = ref;
      this.mem.applySnapshot(rd.snapshot);
    }
    if (rd.entries.length > 0) this.mem.append(rd.entries);
    if (hs) {
      this.mem.setHardState(hs);
      this.hard = hs;
      this.hardDirty = false;
    }
  }

  /**
   * Write a snapshot's data as chunks that nothing refers to yet, synced: the large write of a
   * snapshot, made beside the Raft loop's own writes (other keys). saveSnapshot adopts it.
   */
  async stageSnapshot(data: Uint8Array): Promise<StagedSnapshot> {
    const { ops, ref } = this.chunkOps(data);
    // In batches: LevelDB serialises writers, and one batch of hundreds of megabytes would hold
    // up the Raft loop's own writes for as long as it takes.
    const per = Math.max(1, Math.floor(STAGE_BATCH_BYTES / STORE_CHUNK_BYTES));
    for (let i = 0; i < ops.length; i += per) await this.write(ops.slice(i, i + per), true, false);
    return { ref };
  }

  /** Delete a staged snapshot that will not be adopted (a newer one was installed meanwhile). */
  async dropStaged(staged: StagedSnapshot): Promise<void> {
    await this.write(this.dropOps(staged.ref), false, false);
  }

  /**
   * Adopt a staged snapshot the application took at `index` (≤ applied) and compact the log up to
   * `compactTo` (≤ index): followers within `index - compactTo` entries still catch up from the log.
   * One small batch: the snapshot record, the old chunks' and the compacted runs' deletions.
   */
  async saveSnapshot(
    index: number,
    confState: ConfState,
    data: Uint8Array,
    staged: StagedSnapshot,
    compactTo: number,
  ): Promise<Snapshot> {
    const term = this.mem.term(index);
    const snap: Snapshot = { meta: { index, term, confState }, data };
    const ops: Op[] = [
      { type: "put", key: KEY_SNAPSHOT, value: encodeSnapshot(snap, staged.ref) },
      ...this.dropOps(this.snapRef),
    ];
    // The stored commit index must not fall below the snapshot's (a restart checks it).
    const wroteHard = this.hardDirty;
    if (wroteHard) ops.push({ type: "put", key: KEY_HARD_STATE, value: encodeHardState(this.hard) });
    const first = this.mem.firstIndex();
    const upTo = Math.min(compactTo, index);
    // Runs wholly below `upTo` go; the run holding `upTo` stays with everything after it.
    let dropped = 0;
    while (dropped + 1 < this.runStarts.length && this.runStarts[dropped + 1]! <= upTo) dropped++;
    for (let i = 0; i < dropped; i++) ops.push({ type: "del", key: logKey(this.runStarts[i]!) });
    const newStart = this.runStarts[dropped];
    if (dropped > 0 && newStart !== undefined && newStart > this.logStart) {
      this.pendingLogStart = newStart;
      ops.push({ type: "put", key: KEY_LOG_START, value: new TextEncoder().encode(String(newStart)) });
    }
    await this.write(ops);
    this.snapRef = staged.ref;
    this.runStarts = this.runStarts.slice(dropped);
    if (wroteHard) this.hardDirty = false;
    this.mem.createSnapshot(index, confState, data);
    if (compactTo > first) this.mem.compact(Math.min(compactTo, index));
    return snap;
  }

  /** The writes that store `snap` whole: its chunks and its record. */
  private snapshotOps(snap: Snapshot): { ops: Op[]; ref: SnapshotRef } {
    const { ops, ref } = this.chunkOps(snap.data);
    ops.push({ type: "put", key: KEY_SNAPSHOT, value: encodeSnapshot(snap, ref) });
    return { ops, ref };
  }

  private chunkOps(data: Uint8Array): { ops: Op[]; ref: SnapshotRef } {
    const gen = randomBytes(8).toString("hex");
    const ops: Op[] = [];
    for (let off = 0, i = 0; off < data.byteLength; off += STORE_CHUNK_BYTES, i++) {
      ops.push({
        type: "put",
        key: chunkKey(gen, i),
        value: encodeChunk(data.subarray(off, off + STORE_CHUNK_BYTES)),
      });
    }
    return { ops, ref: { gen, chunks: ops.length, bytes: data.byteLength } };
  }

  private dropOps(ref: SnapshotRef | undefined): Op[] {
    if (!ref) return [];
    return Array.from({ length: ref.chunks }, (_, i): Op => ({ type: "del", key: chunkKey(ref.gen, i) }));
  }

  /**
   * `owns`: this write carries the log-start move set before it (the writes that stage or drop
   * snapshot chunks run beside the others and carry none).
   */
  private async write(ops: Op[], sync = true, owns = true): Promise<void> {
    const logStart = owns ? this.pendingLogStart : undefined;
    if (owns) this.pendingLogStart = undefined;
    // A chained batch: the array form validates and copies every operation first, which costs
    // the main thread about 30 µs more per write (measured), on the path of every commit.
    const batch = this.db.batch();
    for (const op of ops) {
      if (op.type === "put") batch.put(op.key, op.value);
      else batch.del(op.key);
    }
    await batch.write({ sync });
    // Only once the deletions are durable does the next compaction start above them.
    if (logStart !== undefined) this.logStart = logStart;
  }
}

/** A chunked snapshot's data, checked: every chunk present and intact, the announced length. */
async function readChunks(db: Level<string, Uint8Array>, ref: SnapshotRef): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (let i = 0; i < ref.chunks; i++) {
    const rec = await db.get(chunkKey(ref.gen, i));
    if (!rec) throw new StorageCorruptError(`snapshot chunk ${i} of ${ref.chunks} is missing`);
    parts.push(decodeChunk(rec));
  }
  const data = Buffer.concat(parts);
  if (data.byteLength !== ref.bytes)
    throw new StorageCorruptError(`snapshot holds ${data.byteLength} bytes, not ${ref.bytes}`);
  return data;
}
