import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Entry, HardState, Ready } from "@dispenser/raft";
import { EntryType } from "@dispenser/raft";
import { Level } from "level";
import { afterEach, describe, expect, it } from "vitest";
import {
  CorruptRecordError,
  decodeRun,
  encodeEntry,
  encodeRun,
  encodeSnapshot,
} from "../src/storage/codec.js";
import { CHUNK_END, CHUNK_PREFIX, KEY_SNAPSHOT, LOG_END, LOG_PREFIX, logKey } from "../src/storage/keys.js";
import { LevelStorage, StorageCorruptError } from "../src/storage/level-storage.js";

const ID = { clusterId: "a", nodeId: 1 };
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "level-runs-"));
  dirs.push(d);
  return d;
}

function entries(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++)
    out.push({ index: i, term, type: EntryType.Normal, data: new Uint8Array([i & 0xff, term]) });
  return out;
}

function ready(es: Entry[], hardState?: HardState): Ready {
  return {
    softState: undefined,
    hardState,
    snapshot: undefined,
    entries: es,
    committedEntries: [],
    messages: [],
    readStates: [],
    mustSync: true,
    sendBeforePersist: false,
  };
}

function fresh(dir: string): Promise<LevelStorage> {
  return LevelStorage.open(dir, ID);
}

/** [index, term] of every entry the storage serves, and the log keys left on disk. */
async function reopened(dir: string): Promise<{ log: [number, number][]; keys: string[] }> {
  const s = await LevelStorage.open(dir, ID);
  const log = s.entries(s.firstIndex(), s.lastIndex() + 1, Infinity).map((e): [number, number] => {
    expect([...e.data]).toEqual([e.index & 0xff, e.term]);
    return [e.index, e.term];
  });
  await s.close();
  const db = new Level<string, Uint8Array>(dir, { keyEncoding: "utf8", valueEncoding: "view" });
  const keys: string[] = [];
  for await (const k of db.keys({ gte: LOG_PREFIX, lt: LOG_END })) keys.push(k);
  await db.close();
  return { log, keys };
}

const span = (from: number, to: number, term: number): [number, number][] =>
  entries(from, to, term).map((e) => [e.index, e.term]);

describe("log runs", () => {
  it("encode and decode every entry of a run, and read a single-entry record as a run of one", () => {
    const es: Entry[] = [
      ...entries(2 ** 33, 2 ** 33 + 2, 7),
      { index: 2 ** 33 + 3, term: 2 ** 40, type: EntryType.ConfChange, data: new Uint8Array(300) },
    ];
    expect(decodeRun(encodeRun(es))).toEqual(es);
    expect(decodeRun(encodeEntry(es[0]!))).toEqual([es[0]]);
    expect(() => encodeRun([es[0]!, es[2]!])).toThrow(/not contiguous/);
    const rec = encodeRun(es);
    for (const cut of [5, 17, 30, rec.length - 1]) {
      const bad = rec.slice(0, cut);
      expect(() => decodeRun(bad)).toThrow(CorruptRecordError);
    }
    const flipped = rec.slice();
    flipped[20] = flipped[20]! ^ 1;
    expect(() => decodeRun(flipped)).toThrow(/checksum/);
  });

  it("stores one record per write and reads the runs back in order", async () => {
    const dir = tempDir();
    const s = await fresh(dir);
    await s.persist(ready(entries(1, 64, 1), { term: 1, vote: 1, commit: 0 }));
    await s.persist(ready(entries(65, 65, 1)));
    await s.close();
    const { log, keys } = await reopened(dir);
    expect(log).toEqual(span(1, 65, 1));
    expect(keys).toEqual([logKey(1), logKey(65)]);
  });

  it("a run that overwrites a suffix hides the rest of an earlier run and deletes later runs", async () => {
    const dir = tempDir();
    let s = await fresh(dir);
    await s.persist(ready(entries(1, 10, 1), { term: 1, vote: 1, commit: 0 }));
    await s.persist(ready(entries(11, 14, 1)));
    // A new leader's log differs from index 5 on: entries 5.. of term 1 are replaced.
    await s.persist(ready(entries(5, 6, 2), { term: 2, vote: 2, commit: 0 }));
    expect(s.lastIndex()).toBe(6);
    await s.close();
    let r = await reopened(dir);
    expect(r.log).toEqual([...span(1, 4, 1), ...span(5, 6, 2)]);
    expect(r.keys).toEqual([logKey(1), logKey(5)]);
    // Appending after the overwrite, and overwriting again at a run's own first index.
    s = await LevelStorage.open(dir, ID);
    await s.persist(ready(entries(7, 9, 2)));
    await s.persist(ready(entries(7, 8, 3), { term: 3, vote: 3, commit: 0 }));
    await s.close();
    r = await reopened(dir);
    expect(r.log).toEqual([...span(1, 4, 1), ...span(5, 6, 2), ...span(7, 8, 3)]);
    expect(r.keys).toEqual([logKey(1), logKey(5), logKey(7)]);
  });

  it("compaction deletes the runs below the cut and keeps the one holding it", async () => {
    const dir = tempDir();
    const s = await fresh(dir);
    await s.persist(ready(entries(1, 4, 1), { term: 1, vote: 1, commit: 0 }));
    await s.persist(ready(entries(5, 8, 1)));
    await s.persist(ready(entries(9, 12, 1), { term: 1, vote: 1, commit: 12 }));
    const data = new Uint8Array([42]);
    await s.saveSnapshot(10, { voters: [1], learners: [] }, data, await s.stageSnapshot(data), 6);
    expect(s.firstIndex()).toBe(7);
    await s.persist(ready(entries(13, 13, 1)));
    await s.close();
    const r = await reopened(dir);
    // Entries under the snapshot are not served after a restart; the run holding 6..8 stays on
    // disk until a later compaction passes it.
    expect(r.log).toEqual(span(11, 13, 1));
    expect(r.keys).toEqual([logKey(5), logKey(9), logKey(13)]);
  });

  it("a snapshot from the leader deletes every run", async () => {
    const dir = tempDir();
    const s = await fresh(dir);
    await s.persist(ready(entries(1, 3, 1), { term: 1, vote: 1, commit: 0 }));
    await s.persist(ready(entries(4, 6, 1)));
    await s.persist({
      ...ready(entries(21, 22, 2), { term: 2, vote: 2, commit: 20 }),
      snapshot: {
        meta: { index: 20, term: 2, confState: { voters: [1], learners: [] } },
        data: new Uint8Array(),
      },
    });
    await s.close();
    const r = await reopened(dir);
    expect(r.log).toEqual(span(21, 22, 2));
    expect(r.keys).toEqual([logKey(21)]);
  });

  it("reads a log written as single-entry records", async () => {
    const dir = tempDir();
    const s = await fresh(dir);
    await s.close();
    const db = new Level<string, Uint8Array>(dir, { keyEncoding: "utf8", valueEncoding: "view" });
    for (const e of entries(1, 5, 1)) await db.put(logKey(e.index), encodeEntry(e));
    await db.close();
    expect((await reopened(dir)).log).toEqual(span(1, 5, 1));
    // ...and keeps working on it: an overwrite from 3 deletes the single records 4 and 5.
    const t = await LevelStorage.open(dir, ID);
    await t.persist(ready(entries(3, 3, 2), { term: 2, vote: 2, commit: 0 }));
    await t.close();
    const r = await reopened(dir);
    expect(r.log).toEqual([...span(1, 2, 1), [3, 2]]);
    expect(r.keys).toEqual([logKey(1), logKey(2), logKey(3)]);
  });

  it("refuses a run stored under another key", async () => {
    const dir = tempDir();
    const s = await fresh(dir);
    await s.close();
    const db = new Level<string, Uint8Array>(dir, { keyEncoding: "utf8", valueEncoding: "view" });
    await db.put(logKey(1), encodeRun(entries(2, 3, 1)));
    await db.close();
    await expect(LevelStorage.open(dir, ID)).rejects.toThrow(StorageCorruptError);
  });
});

describe("snapshots in chunks", () => {
  const conf = { voters: [1], learners: [] };
  /** Snapshot data of `n` bytes, each byte its offset's low bits (a misplaced chunk shows). */
  const data = (n: number): Uint8Array =>
    Uint8Array.from({ length: n }, (_, i) => (i * 7 + (i >> 20)) & 0xff);
  async function chunkKeys(dir: string): Promise<string[]> {
    const db = new Level<string, Uint8Array>(dir, { keyEncoding: "utf8", valueEncoding: "view" });
    const keys: string[] = [];
    for await (const k of db.keys({ gte: CHUNK_PREFIX, lt: CHUNK_END })) keys.push(k);
    await db.close();
    return keys;
  }

  it("a snapshot larger than a chunk is stored in chunks and read back whole", async () => {
    const dir = tempDir();
    const s = await fresh(dir);
    await s.persist(ready(entries(1, 12, 1), { term: 1, vote: 1, commit: 12 }));
    const big = data(2.5 * 2 ** 20);
    await s.saveSnapshot(10, conf, big, await s.stageSnapshot(big), 8);
    await s.close();
    expect(await chunkKeys(dir)).toHaveLength(3);
    const t = await LevelStorage.open(dir, ID);
    expect(Buffer.compare(Buffer.from(t.snapshot().data), Buffer.from(big))).toBe(0);
    expect(t.snapshot().meta).toEqual({ index: 10, term: 1, confState: conf });
    // The next snapshot replaces the chunks of the last one.
    const small = data(100);
    await t.saveSnapshot(12, conf, small, await t.stageSnapshot(small), 12);
    await t.close();
    expect(await chunkKeys(dir)).toHaveLength(1);
    const u = await LevelStorage.open(dir, ID);
    expect([...u.snapshot().data]).toEqual([...small]);
    await u.close();
  });

  it("chunks staged and never adopted (a crash, or a newer snapshot installed) are deleted", async () => {
    const dir = tempDir();
    const s = await fresh(dir);
    await s.persist(ready(entries(1, 4, 1), { term: 1, vote: 1, commit: 4 }));
    const adopted = data(10);
    await s.saveSnapshot(3, conf, adopted, await s.stageSnapshot(adopted), 3);
    await s.stageSnapshot(data(3 * 2 ** 20)); // the node stops before adopting it
    const dropped = await s.stageSnapshot(data(5));
    await s.dropStaged(dropped);
    await s.close();
    expect(await chunkKeys(dir)).toHaveLength(4);
    const t = await LevelStorage.open(dir, ID);
    expect([...t.snapshot().data]).toEqual([...adopted]);
    await t.close();
    expect(await chunkKeys(dir)).toHaveLength(1);
  });

  it("a leader's snapshot is stored in chunks and replaces the last one's", async () => {
    const dir = tempDir();
    const s = await fresh(dir);
    const first = data(2 ** 20 + 1);
    await s.persist(ready(entries(1, 4, 1), { term: 1, vote: 1, commit: 4 }));
    await s.saveSnapshot(4, conf, first, await s.stageSnapshot(first), 4);
    const installed = data(3 * 2 ** 20);
    await s.persist({
      ...ready([], { term: 2, vote: 2, commit: 30 }),
      snapshot: { meta: { index: 30, term: 2, confState: conf }, data: installed },
    });
    await s.close();
    expect(await chunkKeys(dir)).toHaveLength(3);
    const t = await LevelStorage.open(dir, ID);
    expect(t.snapshot().meta.index).toBe(30);
    expect(Buffer.compare(Buffer.from(t.snapshot().data), Buffer.from(installed))).toBe(0);
    await t.close();
  });

  it("a missing or corrupt chunk stops the node; an inline snapshot of earlier versions still loads", async () => {
    const dir = tempDir();
    const s = await fresh(dir);
    await s.persist(ready(entries(1, 4, 1), { term: 1, vote: 1, commit: 4 }));
    const big = data(2 * 2 ** 20 + 5);
    await s.saveSnapshot(4, conf, big, await s.stageSnapshot(big), 4);
    await s.close();
    const keys = await chunkKeys(dir);
    let db = new Level<string, Uint8Array>(dir, { keyEncoding: "utf8", valueEncoding: "view" });
    const got = await db.get(keys[1]!);
    if (!got) throw new Error("chunk 1 not stored");
    const rec = Buffer.from(got);
    rec[100] = rec[100]! ^ 1;
    await db.put(keys[1]!, rec);
    await db.close();
    await expect(LevelStorage.open(dir, ID)).rejects.toThrow("snapshot chunk: checksum mismatch");
    db = new Level<string, Uint8Array>(dir, { keyEncoding: "utf8", valueEncoding: "view" });
    await db.del(keys[1]!);
    await db.close();
    await expect(LevelStorage.open(dir, ID)).rejects.toThrow("snapshot chunk 1 of 3 is missing");
    // The record as versions before chunking wrote it: the data inline.
    db = new Level<string, Uint8Array>(dir, { keyEncoding: "utf8", valueEncoding: "view" });
    await db.put(
      KEY_SNAPSHOT,
      encodeSnapshot({ meta: { index: 4, term: 1, confState: conf }, data: new Uint8Array([1, 2, 3]) }),
    );
    await db.close();
    const t = await LevelStorage.open(dir, ID);
    expect([...t.snapshot().data]).toEqual([1, 2, 3]);
    await t.close();
    expect(await chunkKeys(dir)).toEqual([]);
  });
});
