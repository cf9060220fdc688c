// The Ready loop on a hand-driven host: rules the simulator reaches only rarely get a test here.
import { describe, expect, test } from "vitest";
import type { Done, LoopStorage, Message, Ready } from "../src/index.js";
import {
  completedJob,
  ConfChangeType,
  MemoryStorage,
  message,
  MessageType,
  RawNode,
  ReadyLoop,
} from "../src/index.js";
import { seededRand } from "./harness.js";

/** A host whose every pause waits in a queue until the test drains it. */
class Host {
  readonly queue: (() => void)[] = [];
  readonly sent: Message[] = [];
  drain(): void {
    for (let k = this.queue.shift(); k; k = this.queue.shift()) k();
  }
}

function storageOn(mem: MemoryStorage, host: Host): LoopStorage<undefined> {
  return {
    firstIndex: () => mem.firstIndex(),
    lastIndex: () => mem.lastIndex(),
    snapshot: () => mem.snapshot(),
    keepHardState: () => {},
    persist: (rd: Ready, done: Done) =>
      host.queue.push(() => {
        if (rd.entries.length > 0) mem.append(rd.entries);
        if (rd.hardState) mem.setHardState(rd.hardState);
        done();
      }),
    stageSnapshot: (_data, done) => host.queue.push(() => done()),
    dropStaged: (_staged, done) => done(),
    saveSnapshot: (_i, _cs, _d, _s, _c, done) => done(),
  };
}

/** A loop for node `id` on `mem`, its pauses in the returned host's queue. */
function loopOn(id: number, mem: MemoryStorage, firstReadId: number): { loop: ReadyLoop<void>; host: Host } {
  const host = new Host();
  const raw = new RawNode({ id, storage: mem, electionTicks: 10, heartbeatTicks: 1, rand: seededRand(1) });
  const loop = new ReadyLoop<void>({
    raw,
    storage: storageOn(mem, host),
    app: { apply: () => {}, beginSnapshot: () => completedJob(new Uint8Array()), restore: () => {} },
    applied: mem.snapshot().meta.index,
    firstReadId,
    host: {
      send: (ms) => host.sent.push(...ms),
      turn: (k) => host.queue.push(k),
      after: () => () => {},
      now: () => 0,
      fatal: (err) => {
        throw err;
      },
    },
  });
  loop.start();
  return { loop, host };
}

/** Node 2 of {1, 2}, one run of its process, following leader 1 in term 2. */
function follower(mem: MemoryStorage, firstReadId: number): { loop: ReadyLoop<void>; host: Host } {
  const f = loopOn(2, mem, firstReadId);
  f.loop.step([message({ type: MessageType.Heartbeat, from: 1, to: 2, term: 2, commit: 1 })]);
  f.host.drain();
  return f;
}

function bootstrapped(voters = [1, 2]): MemoryStorage {
  const mem = new MemoryStorage();
  mem.applySnapshot({
    meta: { index: 1, term: 1, confState: { voters, learners: [] } },
    data: new Uint8Array(),
  });
  mem.setHardState({ term: 1, vote: 0, commit: 1 });
  return mem;
}

describe("ReadyLoop", () => {
  test("a leader's answer to a read of the previous run is not taken for a new read's", () => {
    const mem = bootstrapped();
    const before = follower(mem, 1);
    let answered = 0;
    const count = { resolve: () => answered++, reject: () => {} };
    before.loop.readBarrier(5_000, count);
    before.host.drain();
    const oldRead = before.host.sent.find((m) => m.type === MessageType.ReadIndex)!;
    expect(oldRead.to).toBe(1);

    // The process restarts (the old read's answer is still on its way), and reads again.
    const after = follower(mem, 1_000_001);
    after.loop.readBarrier(5_000, count);
    after.host.drain();
    const newRead = after.host.sent.find((m) => m.type === MessageType.ReadIndex)!;
    expect(newRead.context).not.toBe(oldRead.context);

    const answer = (context: number): Message =>
      message({ type: MessageType.ReadIndexResp, from: 1, to: 2, term: 2, index: 1, context });
    after.loop.step([answer(oldRead.context)]);
    after.host.drain();
    expect(answered).toBe(0);
    after.loop.step([answer(newRead.context)]);
    after.host.drain();
    expect(answered).toBe(1);
  });

  test("a membership change is answered once in force, also when applying yields before advance()", () => {
    const { loop, host } = loopOn(1, bootstrapped([1]), 1);
    for (let i = 0; i < 30 && !loop.isLeader(); i++) {
      loop.tick();
      host.drain();
    }
    expect(loop.isLeader()).toBe(true);
    let learnersAtAnswer: readonly number[] | undefined;
    loop.proposeConfChange(
      { type: ConfChangeType.AddLearner, nodeId: 2 },
      {
        resolve: () => (learnersAtAnswer = loop.status().confState.learners),
        reject: (e) => {
          throw e;
        },
      },
    );
    // More entries behind it than one chunk applies between two turns of the host.
    for (let i = 0; i < 40; i++) loop.propose(new Uint8Array([i]), { resolve: () => {}, reject: () => {} });
    host.drain();
    expect(learnersAtAnswer).toEqual([2]);
  });
});
