import type { Entry, Message } from "@dispenser/raft";
import { message, MessageType } from "@dispenser/raft";
import { describe, expect, it } from "vitest";
import { coalesceAppends } from "../src/transport/peer-transport.js";

const entry = (index: number, term = 2): Entry => ({ index, term, type: 0, data: new Uint8Array([index]) });
const app = (index: number, logTerm: number, entries: Entry[], commit: number, term = 2): Message =>
  message({ type: MessageType.App, from: 1, to: 2, term, index, logTerm, entries, commit });

describe("coalesceAppends", () => {
  it("merges contiguous appends of one term into one, with the latest commit index", () => {
    const batch = [app(4, 2, [entry(5)], 3), app(5, 2, [entry(6), entry(7)], 4), app(7, 2, [], 7)];
    const before = structuredClone(batch);
    const out = coalesceAppends(batch);
    expect(batch).toEqual(before); // the core's messages are not changed
    expect(out).toHaveLength(1);
    expect(out[0]!.index).toBe(4);
    expect(out[0]!.logTerm).toBe(2);
    expect(out[0]!.entries.map((e) => e.index)).toEqual([5, 6, 7]);
    expect(out[0]!.commit).toBe(7);
  });

  it("keeps apart what is not a continuation, and keeps the order around other messages", () => {
    const hb = message({ type: MessageType.Heartbeat, from: 1, to: 2, term: 2, commit: 3 });
    const batch = [
      app(4, 2, [entry(5)], 3),
      app(7, 2, [entry(8)], 3), // a gap
      app(8, 2, [entry(9, 3)], 3, 3), // another term
      hb,
      app(9, 3, [entry(10, 3)], 3, 3), // after a heartbeat
      app(10, 2, [entry(11, 3)], 3, 3), // wrong previous term
    ];
    expect(coalesceAppends(batch)).toEqual(batch);
  });
});
