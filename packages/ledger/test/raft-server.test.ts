import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Message, NodeId } from "@dispenser/raft";
import { needsWrite } from "@dispenser/raft";
import { Level } from "level";
import { pino } from "pino";
import { Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { LedgerMetrics } from "../src/metrics.js";
import type { Application, SnapshotJob } from "../src/raft-server/raft-server.js";
import {
  completedJob,
  NotLeaderError,
  ProposalDroppedError,
  RaftServer,
} from "../src/raft-server/raft-server.js";
import { encodeEntry } from "../src/storage/codec.js";
import { logKey } from "../src/storage/keys.js";
import { LevelStorage, StorageCorruptError } from "../src/storage/level-storage.js";

/** A counter that allocates ranges: the ledger's job in miniature. */
class Counter implements Application<{ start: number; end: number }> {
  mark = 0;
  apply(data: Uint8Array): { start: number; end: number } {
    const size = new DataView(data.buffer, data.byteOffset, 4).getUint32(0);
    const g = { start: this.mark, end: this.mark + size };
    this.mark = g.end;
    return g;
  }
  snapshot(): Uint8Array {
    return new TextEncoder().encode(String(this.mark));
  }
  beginSnapshot(): SnapshotJob {
    if (Counter.slowSteps === 0) return completedJob(this.snapshot());
    // A large state: many steps of real work, the bytes those of the start.
    const data = this.snapshot();
    let left = Counter.slowSteps;
    Counter.writing += 1;
    return {
      step: () => {
        const until = performance.now() + 2;
        while (performance.now() < until);
        if (--left > 0) return false;
        Counter.writing -= 1;
        return true;
      },
      result: () => data,
      cancel: () => {
        Counter.writing -= 1;
      },
    };
  }
  /** Steps of about 2 ms each a snapshot takes (0: done at once). */
  static slowSteps = 0;
  /** Snapshot jobs begun and not finished. */
  static writing = 0;
  restore(data: Uint8Array): void {
    this.mark = Number(new TextDecoder().decode(data) || "0");
  }
}

const size = (n: number): Uint8Array => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
};

let seed = 7;
const rand = { intn: (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n) };

interface Cluster {
  dir: string;
  servers: Map<NodeId, RaftServer<{ start: number; end: number }>>;
  storages: Map<NodeId, LevelStorage>;
  down: Set<NodeId>;
}

const clusters: Cluster[] = [];

async function startNode(
  c: Cluster,
  id: NodeId,
  voters: NodeId[],
  snapshotEntries = 10_000,
  proposalTimeoutMs?: number,
): Promise<void> {
  const storage = await LevelStorage.open(join(c.dir, `n${id}`), { clusterId: "test", nodeId: id });
  if (storage.wasEmpty) {
    await storage.bootstrap(
      { meta: { index: 1, term: 1, confState: { voters, learners: [] } }, data: new Counter().snapshot() },
      { term: 1, vote: 0, commit: 1 },
    );
  }
  const registry = new Registry();
  const server = new RaftServer({
    id,
    storage,
    app: new Counter(),
    transport: {
      send: (msgs: readonly Message[]) => {
        for (const m of msgs) {
          if (c.down.has(m.to) || c.down.has(m.from)) continue;
          setImmediate(() => c.servers.get(m.to)?.receive([m]));
        }
      },
    },
    logger: pino({ level: "silent" }),
    metrics: new LedgerMetrics(registry, id),
    rand,
    tickMs: 10,
    snapshotEntries,
    compactMarginEntries: 5,
    proposalTimeoutMs,
    onFatal: (err) => {
      throw err;
    },
  });
  c.servers.set(id, server);
  c.storages.set(id, storage);
  c.down.delete(id);
  server.start();
}

async function crash(c: Cluster, id: NodeId): Promise<void> {
  c.down.add(id);
  await c.servers.get(id)!.stop();
  await c.storages.get(id)!.close();
  c.servers.delete(id);
}

async function leader(c: Cluster): Promise<RaftServer<{ start: number; end: number }>> {
  for (let i = 0; i < 500; i++) {
    for (const s of c.servers.values()) if (s.isLeader()) return s;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error("no leader elected");
}

/** `f`, again while an election refuses or drops it (up to about a second). */
async function retryChurn<T>(f: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await f();
    } catch (e) {
      if (attempt >= 50 || !(e instanceof NotLeaderError || e instanceof ProposalDroppedError)) throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

async function newCluster(n: number, snapshotEntries?: number, proposalTimeoutMs?: number): Promise<Cluster> {
  const c: Cluster = {
    dir: mkdtempSync(join(tmpdir(), "raft-server-")),
    servers: new Map(),
    storages: new Map(),
    down: new Set(),
  };
  clusters.push(c);
  const voters = Array.from({ length: n }, (_, i) => i + 1);
  for (const id of voters) await startNode(c, id, voters, snapshotEntries, proposalTimeoutMs);
  return c;
}

afterEach(async () => {
  for (const c of clusters.splice(0)) {
    for (const id of [...c.servers.keys()]) await crash(c, id);
    rmSync(c.dir, { recursive: true, force: true });
  }
});

function disjoint(grants: { start: number; end: number }[]): boolean {
  const s = [...grants].sort((a, b) => a.start - b.start);
  return s.every((g, i) => i === 0 || g.start >= s[i - 1]!.end);
}

describe("RaftServer on LevelDB", () => {
  it("elects a leader and applies concurrent proposals in one order", async () => {
    const c = await newCluster(3);
    const l = await leader(c);
    const grants = await Promise.all(Array.from({ length: 200 }, (_, i) => l.propose(size(i + 1))));
    expect(disjoint(grants)).toBe(true);
    expect(Math.max(...grants.map((g) => g.end))).toBe((200 * 201) / 2);
  });

  it("answers a large commit in chunks: the event loop turns before the last answer", async () => {
    const c = await newCluster(1);
    const l = await leader(c);
    let turned = false;
    let firstDone = false;
    // All 100 are stepped into one Ready (they are queued before the loop runs), so they commit
    // together; whatever the first answer schedules must run before the last is made.
    const ps = Array.from({ length: 100 }, (_, i) =>
      l.propose(size(1)).then((g) => {
        if (!firstDone) {
          firstDone = true;
          setImmediate(() => (turned = true));
        }
        return { i, g, turnedBefore: turned };
      }),
    );
    const out = await Promise.all(ps);
    expect(out[0]!.turnedBefore).toBe(false);
    expect(out[99]!.turnedBefore).toBe(true);
    // Still applied in proposal order.
    expect(out.map((o) => o.g.start)).toEqual(out.map((_, i) => out[0]!.g.start + i));
  });

  it("a proposal that cannot commit fails after the proposal timeout", async () => {
    const c = await newCluster(3, undefined, 40);
    const l = await leader(c);
    await l.propose(size(1)); // the cluster works
    for (const id of c.servers.keys()) if (id !== l.id) c.down.add(id);
    const t0 = performance.now();
    const err = await l.propose(size(2)).then(
      () => undefined,
      (e: unknown) => e,
    );
    const waited = performance.now() - t0;
    // Before the leader could notice it lost its quorum (an election timeout is 100 ms or more).
    expect(String(err)).toMatch(/no result within 40 ms/);
    expect(waited).toBeGreaterThanOrEqual(39);
  });

  it("a follower refuses proposals with the leader's id", async () => {
    const c = await newCluster(3);
    const l = await leader(c);
    await l.propose(size(1));
    const f = [...c.servers.values()].find((s) => s !== l)!;
    await expect(f.propose(size(1))).rejects.toBeInstanceOf(NotLeaderError);
  });

  it("keeps every grant across a leader crash and a restart of the whole cluster", async () => {
    const c = await newCluster(3, 20);
    const l1 = await leader(c);
    const before = await Promise.all(Array.from({ length: 50 }, () => l1.propose(size(10))));
    await crash(c, l1.id);
    const l2 = await leader(c);
    const mid = await Promise.all(Array.from({ length: 50 }, () => l2.propose(size(10))));
    for (const id of [...c.servers.keys()]) await crash(c, id);
    for (const id of [1, 2, 3]) await startNode(c, id, [1, 2, 3], 20);
    const l3 = await leader(c);
    const after = await Promise.all(Array.from({ length: 50 }, () => l3.propose(size(10))));
    const all = [...before, ...mid, ...after];
    expect(disjoint(all)).toBe(true);
    const maxBefore = Math.max(...[...before, ...mid].map((g) => g.end));
    expect(Math.min(...after.map((g) => g.start))).toBeGreaterThanOrEqual(maxBefore);
  });

  it("keeps committing while a large snapshot is written, and restarts from it", async () => {
    Counter.slowSteps = 300; // 600 ms of work per snapshot, six times an election timeout
    try {
      const c = await newCluster(3, 20);
      const grants = [];
      let duringSnapshot = 0;
      const snapshotted = () => [...c.storages.values()].every((s) => s.snapshot().meta.index >= 20);
      while (!snapshotted() || grants.length < 40) {
        const writing = Counter.writing > 0;
        grants.push(await retryChurn(async () => (await leader(c)).propose(size(1))));
        if (writing && Counter.writing > 0) duringSnapshot += 1;
      }
      // Proposals went on committing (the loop answered) while snapshots were being written.
      expect(duringSnapshot).toBeGreaterThan(5);
      for (const id of [...c.servers.keys()]) await crash(c, id);
      for (const id of [1, 2, 3]) await startNode(c, id, [1, 2, 3], 20);
      const after = await retryChurn(async () => (await leader(c)).propose(size(1)));
      expect(after.start).toBe(Math.max(...grants.map((g) => g.end)));
    } finally {
      Counter.slowSteps = 0;
    }
  });

  it("a linearizable read on a follower sees an acknowledged proposal", async () => {
    const c = await newCluster(3);
    // Three nodes with 10 ms ticks share one loaded process, so an election may run at any time:
    // an attempt refused or dropped by it is retried, as a client would. What is checked is what
    // the read returns.
    let acknowledgedAt = 0;
    const g = await retryChurn(async () => {
      const l = await leader(c);
      const r = await l.propose(size(5));
      acknowledgedAt = l.status().applied;
      return r;
    });
    expect(g.end - g.start).toBe(5);
    const f = [...c.servers.values()].find((s) => !s.isLeader())!;
    await retryChurn(() => f.readBarrier());
    expect(f.status().applied).toBeGreaterThanOrEqual(acknowledgedAt);
  });
});

async function writeLog(dir: string, entries: { index: number; term: number }[]): Promise<void> {
  const s = await LevelStorage.open(dir, { clusterId: "a", nodeId: 1 });
  await s.bootstrap(
    { meta: { index: 1, term: 1, confState: { voters: [1], learners: [] } }, data: new Uint8Array() },
    { term: 1, vote: 0, commit: 1 },
  );
  await s.persist({
    softState: undefined,
    hardState: { term: 3, vote: 1, commit: 1 },
    snapshot: undefined,
    entries: entries.map((e) => ({ ...e, type: 0, data: new Uint8Array([1, 2, 3]) })),
    committedEntries: [],
    messages: [],
    readStates: [],
    mustSync: true,
    sendBeforePersist: false,
  });
  await s.close();
}

describe("LevelStorage", () => {
  it("reloads exactly what was persisted", async () => {
    const dir = mkdtempSync(join(tmpdir(), "level-storage-"));
    try {
      await writeLog(dir, [
        { index: 2, term: 1 },
        { index: 3, term: 2 },
      ]);
      const s = await LevelStorage.open(dir, { clusterId: "a", nodeId: 1 });
      expect(s.lastIndex()).toBe(3);
      expect(s.term(3)).toBe(2);
      expect(s.hardState()).toEqual({ term: 3, vote: 1, commit: 1 });
      expect(s.entries(2, 4, 1 << 20).map((e) => [...e.data])).toEqual([
        [1, 2, 3],
        [1, 2, 3],
      ]);
      await s.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses a log whose entry fails its checksum", async () => {
    const dir = mkdtempSync(join(tmpdir(), "level-storage-"));
    try {
      await writeLog(dir, [
        { index: 2, term: 1 },
        { index: 3, term: 2 },
      ]);
      const db = new Level<string, Uint8Array>(dir, { keyEncoding: "utf8", valueEncoding: "view" });
      const key = logKey(2); // the run holding entries 2 and 3
      const v = Uint8Array.from(await db.get(key));
      v[v.length - 1] = v[v.length - 1]! ^ 0xff;
      await db.put(key, v);
      await db.close();
      await expect(LevelStorage.open(dir, { clusterId: "a", nodeId: 1 })).rejects.toThrow(
        /checksum mismatch/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses a log with a gap or a decreasing term", async () => {
    for (const entries of [
      [
        { index: 2, term: 1 },
        { index: 4, term: 1 },
      ],
      [
        { index: 2, term: 2 },
        { index: 3, term: 1 },
      ],
    ]) {
      const dir = mkdtempSync(join(tmpdir(), "level-storage-"));
      try {
        // Written entry by entry (the single-entry records of earlier versions, still read) so the
        // storage's own append does not repair the defect.
        await writeLog(dir, []);
        const db = new Level<string, Uint8Array>(dir, { keyEncoding: "utf8", valueEncoding: "view" });
        for (const e of entries)
          await db.put(logKey(e.index), encodeEntry({ ...e, type: 0, data: new Uint8Array() }));
        await db.close();
        await expect(LevelStorage.open(dir, { clusterId: "a", nodeId: 1 })).rejects.toBeInstanceOf(
          StorageCorruptError,
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });

  it("writes a commit-only hard state with the next write, and at close", async () => {
    const dir = mkdtempSync(join(tmpdir(), "level-storage-"));
    const ready = (
      hardState: { term: number; vote: number; commit: number } | undefined,
      entries: number[],
    ) => ({
      softState: undefined,
      hardState,
      snapshot: undefined,
      entries: entries.map((index) => ({ index, term: 3, type: 0 as const, data: new Uint8Array([index]) })),
      committedEntries: [],
      messages: [],
      readStates: [],
      mustSync: entries.length > 0,
      sendBeforePersist: false,
    });
    try {
      await writeLog(dir, [{ index: 2, term: 1 }]);
      let s = await LevelStorage.open(dir, { clusterId: "a", nodeId: 1 });
      const commitOnly = ready({ term: 3, vote: 1, commit: 2 }, []);
      expect(needsWrite(commitOnly)).toBe(false);
      await s.persist(commitOnly);
      expect(s.hardState().commit).toBe(2);
      await s.persist(ready(undefined, [3]));
      await s.persist(ready({ term: 3, vote: 1, commit: 3 }, []));
      await s.saveSnapshot(
        3,
        { voters: [1], learners: [] },
        new Uint8Array(),
        await s.stageSnapshot(new Uint8Array()),
        2,
      );
      await s.persist(ready(undefined, [4]));
      await s.persist(ready({ term: 3, vote: 1, commit: 4 }, []));
      await s.close();
      s = await LevelStorage.open(dir, { clusterId: "a", nodeId: 1 });
      expect(s.hardState()).toEqual({ term: 3, vote: 1, commit: 4 });
      expect(s.lastIndex()).toBe(4);
      expect(s.snapshot().meta.index).toBe(3);
      await s.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses a data directory of another node", async () => {
    const dir = mkdtempSync(join(tmpdir(), "level-storage-"));
    try {
      const s = await LevelStorage.open(dir, { clusterId: "a", nodeId: 1 });
      await s.close();
      await expect(LevelStorage.open(dir, { clusterId: "a", nodeId: 2 })).rejects.toBeInstanceOf(
        StorageCorruptError,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
