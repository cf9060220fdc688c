import { describe, expect, it } from "vitest";
import type { Entry } from "@dispenser/raft";
import { Checker } from "../src/checker.js";

const entry = (index: number, term: number, byte = 0): Entry => ({
  index,
  term,
  type: 0,
  data: new Uint8Array([byte]),
});

// Each checker must be able to fail: feed it a history that breaks its rule.
describe("checker", () => {
  it("flags two leaders in one term", () => {
    const c = new Checker();
    c.leader(3, 1);
    c.leader(3, 1);
    expect(c.violations).toHaveLength(0);
    c.leader(3, 2);
    expect(c.violations.map((v) => v.rule)).toEqual(["one-leader-per-term"]);
  });

  it("flags different entries at the same index and term (log matching)", () => {
    const c = new Checker();
    c.persisted(1, entry(5, 2, 7), 2);
    c.persisted(2, entry(5, 2, 7), 2);
    expect(c.violations).toHaveLength(0);
    c.persisted(3, entry(5, 2, 8), 2);
    expect(c.violations[0]?.rule).toBe("log-matching");
  });

  it("flags the same entry with a different predecessor term", () => {
    const c = new Checker();
    c.persisted(1, entry(5, 2), 1);
    c.persisted(2, entry(5, 2), undefined); // After a snapshot: predecessor unknown, fine.
    expect(c.violations).toHaveLength(0);
    c.persisted(3, entry(5, 2), 2);
    expect(c.violations[0]?.rule).toBe("log-matching");
  });

  it("flags two nodes applying different entries at one index", () => {
    const c = new Checker();
    c.applyEntry(1, entry(4, 2));
    c.applyEntry(2, entry(4, 2));
    expect(c.violations).toHaveLength(0);
    c.applyEntry(3, entry(4, 3));
    expect(c.violations[0]?.rule).toBe("state-machine-safety");
  });

  it("flags overlapping grants and grants below an earlier acknowledgement", () => {
    const c = new Checker();
    c.ack("k", { requestId: 1, start: 0, end: 10 }, 0);
    c.ack("k", { requestId: 2, start: 20, end: 30 }, 10);
    expect(c.violations).toHaveLength(0);
    c.ack("k", { requestId: 3, start: 25, end: 35 }, 10);
    expect(c.violations.map((v) => v.rule)).toEqual(["grants-disjoint"]);
    const d = new Checker();
    d.ack("k", { requestId: 1, start: 0, end: 10 }, 0);
    d.ack("k", { requestId: 2, start: 10, end: 20 }, 15);
    expect(d.violations.map((v) => v.rule)).toEqual(["grant-linearizable"]);
  });

  it("flags an allocation mark that goes down or disagrees", () => {
    const c = new Checker();
    c.mark(1, 2, 0, 10);
    c.mark(2, 2, 0, 10);
    c.mark(1, 3, 10, 15);
    expect(c.violations).toHaveLength(0);
    c.mark(3, 3, 10, 12);
    expect(c.violations[0]?.rule).toBe("allocation-mark");
    const d = new Checker();
    d.mark(1, 2, 10, 5);
    expect(d.violations[0]?.rule).toBe("allocation-mark");
  });

  it("keeps spaces apart and accepts a retry answered with its first grant", () => {
    const c = new Checker();
    c.ack("a", { requestId: 1, start: 0, end: 10 }, 0);
    c.ack("b", { requestId: 2, start: 0, end: 10 }, 0);
    c.ack("a", { requestId: 1, start: 0, end: 10 }, 0);
    expect(c.violations).toHaveLength(0);
    c.ack("a", { requestId: 1, start: 10, end: 20 }, 0);
    expect(c.violations.map((v) => v.rule)).toEqual(["idempotent-retry"]);
  });

  it("flags a stale read", () => {
    const c = new Checker();
    c.read(1, "k", 100, 100);
    expect(c.violations).toHaveLength(0);
    c.read(1, "k", 99, 100);
    expect(c.violations[0]?.rule).toBe("read-linearizable");
  });

  it("flags a new leader missing a committed entry", () => {
    const c = new Checker();
    c.applyEntry(1, entry(2, 1));
    c.applyEntry(1, entry(3, 2));
    c.newLeader(2, 3, 3, 1, (i) => (i === 3 ? 2 : 1));
    expect(c.violations).toHaveLength(0);
    c.newLeader(3, 4, 3, 1, (i) => (i === 3 ? 3 : 1));
    expect(c.violations[0]?.rule).toBe("leader-completeness");
    const d = new Checker();
    d.applyEntry(1, entry(3, 2));
    d.newLeader(2, 3, 2, 1, () => 1);
    expect(d.violations[0]?.rule).toBe("leader-completeness");
  });

  it("flags a commit not on a majority's synced disk", () => {
    const c = new Checker();
    const synced = new Set([1, 2]);
    c.committedDurable(1, 5, 2, [[1, 2, 3]], (id) => synced.has(id));
    expect(c.violations).toHaveLength(0);
    c.committedDurable(1, 5, 2, [[1, 2, 3, 4, 5]], (id) => synced.has(id));
    expect(c.violations[0]?.rule).toBe("committed-is-durable");
  });
});
