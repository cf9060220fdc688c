import { describe, expect, test } from "vitest";
import { encodeCommand } from "../../src/state/commands.js";
import { MEMO_LIMIT, WINDOW_LIMIT } from "../../src/state/dc-ledger.js";
import type { LeaseOutcome } from "../../src/state/ledger-state.js";
import { LedgerState, MAX_SEQUENCES, snapshotDocument } from "../../src/state/ledger-state.js";
import type { Result } from "../../src/state/result.js";
import { Driver, seqDef, tokenOf } from "./harness.js";

function granted(r: Result<LeaseOutcome>): LeaseOutcome {
  if (!r.ok) throw new Error(`lease failed: ${r.code}: ${r.message}`);
  return r.data;
}

const range = (r: Result<LeaseOutcome>): [bigint, bigint] => {
  const g = granted(r).grant;
  return [g.start, g.end];
};

/** Runs `f` and checks that it left the state byte-for-byte unchanged. */
function unchanged(d: Driver, f: () => void): void {
  const before = d.state.snapshot();
  f();
  expect(d.state.snapshot()).toEqual(before);
}

describe("catalog", () => {
  test("create, get, and the revision", () => {
    const d = new Driver();
    const c = d.create({ name: "orders", type: 2, length: 8 }, 1_757_376_000_000);
    expect(c).toMatchObject({
      type: "CreateSequence",
      revision: 1n,
      resumed: false,
      message: 'created sequence "orders"',
    });
    expect(d.state.revision).toBe(1n);
    expect(d.state.get("orders")).toEqual({
      def: seqDef({ name: "orders", type: 2, length: 8 }),
      createdAtMs: 1_757_376_000_000,
      createRevision: 1n,
      modRevision: 1n,
    });
    expect(d.state.get("nope")).toBeUndefined();
    expect(Object.isFrozen(d.state.get("orders")?.def)).toBe(true);
  });

  test("a duplicate name is already-exists and changes nothing", () => {
    const d = new Driver();
    d.create({ name: "a", type: 3 });
    unchanged(d, () => {
      expect(
        d.run({ type: "CreateSequence", def: seqDef({ name: "a", type: 3, step: 2n }), createdAtMs: 5 }),
      ).toEqual({
        ok: false,
        code: "already-exists",
        message: 'sequence "a" already exists',
      });
    });
  });

  test("an invalid definition is invalid-argument with the reasons, and changes nothing", () => {
    const d = new Driver();
    const def = { ...seqDef({ name: "a", type: 2, length: 3 }), starting: 5n };
    unchanged(d, () => {
      expect(d.run({ type: "CreateSequence", def, createdAtMs: 0 })).toEqual({
        ok: false,
        code: "invalid-argument",
        message: "invalid sequence definition: starting 5 is outside the 3-digit range 100..999",
      });
    });
  });

  test("update changes only safe fields and bumps the revision only when something changed", () => {
    const d = new Driver();
    d.create({ name: "a", type: 3 });
    const u = d.must({
      type: "UpdateSequence",
      name: "a",
      changes: { ordering: "global", limits: { maxSegmentSize: 10n } },
    });
    expect(u.changed).toBe(true);
    expect(u.revision).toBe(2n);
    expect(u.sequence).toMatchObject({ createRevision: 1n, modRevision: 2n });
    expect(u.sequence.def).toMatchObject({
      ordering: "global",
      autoDisk: "pre-checkpoint",
      limits: { maxSegmentSize: 10n },
    });
    const again = d.must({ type: "UpdateSequence", name: "a", changes: { ordering: "global" } });
    expect(again).toMatchObject({ changed: false, revision: 2n });
    expect(d.state.revision).toBe(2n);
    expect(d.run({ type: "UpdateSequence", name: "b", changes: { ordering: "dc" } })).toMatchObject({
      ok: false,
      code: "not-found",
    });
    const bad = d.run({ type: "UpdateSequence", name: "a", changes: { limits: { maxSegmentSize: 0n } } });
    expect(bad).toMatchObject({ ok: false, code: "invalid-argument" });
  });

  test("reserveSeconds is changed by update, and never to 0 while the ordering is dc", () => {
    const d = new Driver();
    d.create({ name: "a", type: 3, ordering: "dc" });
    const u = d.must({ type: "UpdateSequence", name: "a", changes: { reserveSeconds: 60 } });
    expect(u).toMatchObject({ changed: true, revision: 2n, sequence: { def: { reserveSeconds: 60 } } });
    unchanged(d, () => {
      expect(d.run({ type: "UpdateSequence", name: "a", changes: { reserveSeconds: 0 } })).toMatchObject({
        ok: false,
        code: "invalid-argument",
        message: expect.stringContaining("ordering dc is served from the DC's reserve") as unknown,
      });
    });
    // Both at once: the ordering first leaves dc, then the reserve may go.
    const off = d.must({
      type: "UpdateSequence",
      name: "a",
      changes: { ordering: "edge", reserveSeconds: 0 },
    });
    expect(off.sequence.def).toMatchObject({ ordering: "edge", reserveSeconds: 0 });
  });

  test("delete hides the sequence and bumps the revision; a second delete is not-found", () => {
    const d = new Driver();
    d.create({ name: "a", type: 3 });
    expect(d.must({ type: "DeleteSequence", name: "a" })).toEqual({
      type: "DeleteSequence",
      name: "a",
      revision: 2n,
    });
    expect(d.state.get("a")).toBeUndefined();
    expect(d.state.counts).toEqual({ live: 0, deleted: 1 });
    expect(d.run({ type: "DeleteSequence", name: "a" })).toMatchObject({ ok: false, code: "not-found" });
    expect(d.lease("a", 0, 1n, "r")).toMatchObject({ ok: false, code: "not-found" });
  });

  test("list pages in name order, skipping deleted names", () => {
    const d = new Driver();
    for (const n of ["e", "b", "d", "a", "c", "f"]) d.create({ name: n, type: 3 });
    d.must({ type: "DeleteSequence", name: "c" });
    d.must({ type: "DeleteSequence", name: "f" });
    const names = (after: string | undefined, limit: number) => {
      const r = d.state.list({ after, limit });
      if (!r.ok) throw new Error(r.message);
      return [r.data.sequences.map((s) => s.def.name), r.data.next];
    };
    expect(names(undefined, 2)).toEqual([["a", "b"], "b"]);
    expect(names("b", 2)).toEqual([["d", "e"], undefined]);
    expect(names("bb", 10)).toEqual([["d", "e"], undefined]);
    expect(names(undefined, 1000)).toEqual([["a", "b", "d", "e"], undefined]);
    expect(names("e", 5)).toEqual([[], undefined]);
    expect(d.state.list({ limit: 0 })).toMatchObject({ ok: false, code: "invalid-argument" });
    expect(d.state.list({ limit: 1001 })).toMatchObject({ ok: false, code: "invalid-argument" });
    const r = d.state.list({ limit: 1 });
    expect(r.ok && r.data.revision).toBe(8n);
  });

  test(`at most ${MAX_SEQUENCES} live names; deleted names do not count and keep only their marks`, () => {
    const d = new Driver();
    const def = seqDef({ name: "x", type: 3 });
    for (let i = 0; i < MAX_SEQUENCES; i++) {
      const r = d.state.apply(
        { type: "CreateSequence", def: { ...def, name: `s${i}` }, createdAtMs: 0 },
        { term: 1, index: i + 1 },
      );
      if (!r.ok) throw new Error(r.message);
    }
    d.index = MAX_SEQUENCES;
    // (Compared as one buffer: toEqual on a snapshot of 100,000 names takes gigabytes.)
    const before = Buffer.from(d.state.snapshot());
    expect(d.run({ type: "CreateSequence", def: { ...def, name: "one-more" }, createdAtMs: 0 })).toEqual({
      ok: false,
      code: "exhausted",
      message: `the ledger holds ${MAX_SEQUENCES} sequences, the maximum (delete some first)`,
    });
    expect(Buffer.compare(before, Buffer.from(d.state.snapshot()))).toBe(0);
    // A deleted name frees its place; it keeps its mark (and nothing else) for a re-creation.
    granted(d.lease("s0", 0, 10n, "r"));
    d.must({ type: "DeleteSequence", name: "s0" });
    expect(d.state.dcInfo("s0", 0)).toMatchObject({ hwm: 10n, top: undefined, stats: { granted: 0n } });
    expect(d.create({ name: "one-more", type: 3 }).resumed).toBe(false);
    d.must({ type: "DeleteSequence", name: "one-more" });
    expect(d.create({ name: "s0", type: 3 }).resumed).toBe(true);
    expect(range(d.lease("s0", 0, 5n, "r2"))).toEqual([10n, 15n]);
    expect(d.state.counts).toEqual({ live: MAX_SEQUENCES, deleted: 1 });
  });

  test("a deleted name is kept compactly in the snapshot and restored the same", () => {
    const d = new Driver();
    d.create({ name: "gone", type: 3, datacenters: 3 });
    granted(d.lease("gone", 2, 7n, "a"));
    granted(d.lease("gone", 0, 3n, "b"));
    d.must({ type: "DeleteSequence", name: "gone" });
    const text = snapshotDocument(d.state.snapshot());
    expect(text).toContain('"deleted":true,"marks":[[0,"3"],[2,"7"]]');
    expect(snapshotDocument(LedgerState.restore(d.state.snapshot()).snapshot())).toBe(text);
  });
});

describe("LeaseSegment", () => {
  test("bad dc and size are invalid-argument and leave no trace", () => {
    const d = new Driver();
    d.create({ name: "a", type: 3, datacenters: 2, limits: { maxSegmentSize: 100n } });
    unchanged(d, () => {
      expect(d.lease("a", 2, 1n, "r")).toEqual({
        ok: false,
        code: "invalid-argument",
        message: 'dc 2 is outside 0..1 for sequence "a" (2 datacenters)',
      });
      expect(d.lease("a", 0, 101n, "r")).toEqual({
        ok: false,
        code: "invalid-argument",
        message: 'size 101 exceeds limits.maxSegmentSize 100 of sequence "a" dc 0',
      });
      expect(d.lease("a", 0, 0n, "r")).toMatchObject({
        code: "invalid-argument",
        message: "size must be >= 1",
      });
    });
  });

  test("a requestId reused for a different request is failed-precondition", () => {
    const d = new Driver();
    d.create({ name: "a", type: 3, datacenters: 2 });
    d.lease("a", 0, 5n, "r");
    unchanged(d, () => {
      expect(d.lease("a", 0, 6n, "r")).toEqual({
        ok: false,
        code: "failed-precondition",
        message: 'requestId "r" was already used on sequence "a" dc 0 for a different request',
      });
      expect(d.lease("a", 0, 5n, "r", "window")).toMatchObject({ code: "failed-precondition" });
      expect(d.giveBack("a", 0, 0n, 5n, { term: 1, index: 2 }, "r")).toMatchObject({
        code: "failed-precondition",
      });
    });
    // Request ids are scoped to one (sequence, dc).
    expect(range(d.lease("a", 1, 6n, "r"))).toEqual([0n, 6n]);
  });

  test(`the memo keeps the last ${MEMO_LIMIT} request ids`, () => {
    const d = new Driver();
    d.create({ name: "a", type: 3 });
    for (let i = 0; i <= MEMO_LIMIT; i++) d.lease("a", 0, 1n, `r${i}`);
    // r0 fell out: a retry is a new request and gets a fresh, disjoint grant.
    expect(granted(d.lease("a", 0, 1n, "r0"))).toMatchObject({
      replayed: false,
      grant: { start: BigInt(MEMO_LIMIT + 1) },
    });
    // r2 is still remembered (r1 was evicted by the retry of r0).
    expect(granted(d.lease("a", 0, 1n, "r2"))).toMatchObject({ replayed: true, grant: { start: 2n } });
    expect(granted(d.lease("a", 0, 1n, "r1"))).toMatchObject({ replayed: false });
  });
});

describe("ReturnSegment", () => {
  function setup() {
    const d = new Driver();
    d.create({ name: "a", type: 3 });
    const g1 = granted(d.lease("a", 0, 100n, "g1")).grant;
    const g2 = granted(d.lease("a", 0, 100n, "g2")).grant;
    return { d, g1, g2 };
  }

  test("the whole top grant can come back, in pieces", () => {
    const { d, g2 } = setup();
    expect(d.giveBack("a", 0, 180n, 200n, g2.fence, "x1")).toMatchObject({
      ok: true,
      data: { accepted: true },
    });
    expect(d.giveBack("a", 0, 100n, 180n, g2.fence, "x2")).toMatchObject({
      ok: true,
      data: { accepted: true, hwm: 100n },
    });
    // Below it is g1's range, not g2's: only g1's holder can give it back.
    unchanged(d, () => {
      expect(d.giveBack("a", 0, 90n, 100n, g2.fence, "x3")).toMatchObject({
        ok: false,
        code: "failed-precondition",
      });
    });
  });

  test("a range outside the grant its fence names is refused and changes nothing", () => {
    const { d, g1, g2 } = setup();
    unchanged(d, () => {
      for (const [start, end, fence] of [
        [50n, 200n, g2.fence],
        [150n, 200n, g1.fence],
        [90n, 110n, g1.fence],
      ] as const) {
        const r = d.giveBack("a", 0, start, end, fence, `ret-${start}-${end}`);
        expect(r).toMatchObject({ ok: false, code: "failed-precondition" });
        expect(!r.ok && r.message).toMatch(/is not inside the grant with fence/);
      }
    });
  });

  test("once the top grant came back whole, the grant below it is the top-most one", () => {
    const { d, g1, g2 } = setup();
    // An edge closing returns its prefetched segment (whole), then its current one's tail.
    expect(d.giveBack("a", 0, 100n, 200n, g2.fence, "x1")).toMatchObject({
      ok: true,
      data: { accepted: true },
    });
    expect(d.giveBack("a", 0, 40n, 100n, g1.fence, "x2")).toMatchObject({
      ok: true,
      data: { accepted: true, hwm: 40n },
    });
    expect(range(d.lease("a", 0, 10n, "g3"))).toEqual([40n, 50n]);
    // The retried lease of g1 now answers its trimmed grant.
    expect(range(d.lease("a", 0, 100n, "g1"))).toEqual([0n, 40n]);
  });

  test("a lower grant is not taken back while the top grant still holds ids", () => {
    const { d, g1, g2 } = setup();
    expect(d.giveBack("a", 0, 150n, 200n, g2.fence, "x1")).toMatchObject({
      ok: true,
      data: { accepted: true },
    });
    expect(d.giveBack("a", 0, 40n, 100n, g1.fence, "x2")).toMatchObject({
      ok: true,
      data: { accepted: false },
    });
    expect(range(d.lease("a", 0, 1n, "next"))).toEqual([150n, 151n]);
  });

  test.each([
    ["a fence that is not the top-most grant's", 50n, 100n, "g1", "its fence is not the top-most grant's"],
    ["a range not ending at the mark", 150n, 190n, "g2", "it does not end at the high-water mark 200"],
  ] as const)("%s is recorded as waste", (_, start, end, which, why) => {
    const { d, g1, g2 } = setup();
    const fence = which === "g1" ? g1.fence : g2.fence;
    const r = d.giveBack("a", 0, start, end, fence, "ret");
    expect(r).toMatchObject({ ok: true, data: { accepted: false, hwm: 200n } });
    expect(r.ok && r.data.message).toBe(
      `range [${start}, ${end}) of sequence "a" dc 0 recorded as waste: ${why}`,
    );
    expect(d.state.dcInfo("a", 0)?.stats.waste).toBe(end - start);
    expect(range(d.lease("a", 0, 1n, "next"))).toEqual([200n, 201n]);
  });

  test("a range above the mark was never granted: failed-precondition, nothing recorded", () => {
    const { d, g2 } = setup();
    unchanged(d, () => {
      expect(d.giveBack("a", 0, 150n, 201n, g2.fence, "ret")).toEqual({
        ok: false,
        code: "failed-precondition",
        message:
          'range [150, 201) reaches above the high-water mark 200 of sequence "a" dc 0: it was never granted',
      });
      expect(d.giveBack("nope", 0, 1n, 2n, g2.fence, "ret")).toMatchObject({ code: "not-found" });
      expect(d.giveBack("a", 1, 1n, 2n, g2.fence, "ret")).toMatchObject({ code: "invalid-argument" });
    });
  });

  test("retries get the first answer back and change nothing", () => {
    const { d, g1, g2 } = setup();
    const first = d.giveBack("a", 0, 150n, 200n, g2.fence, "ret");
    const waste = d.giveBack("a", 0, 50n, 100n, g1.fence, "ret-w");
    d.lease("a", 0, 30n, "g3"); // someone else now holds [150, 180)
    unchanged(d, () => {
      expect(d.giveBack("a", 0, 150n, 200n, g2.fence, "ret")).toEqual(
        first.ok && { ...first, data: { ...first.data, replayed: true, hwm: 180n } },
      );
      expect(d.giveBack("a", 0, 50n, 100n, g1.fence, "ret-w")).toMatchObject({
        ok: true,
        data: { accepted: false, replayed: true, message: waste.ok && waste.data.message },
      });
      expect(d.giveBack("a", 0, 150n, 199n, g2.fence, "ret")).toMatchObject({ code: "failed-precondition" });
    });
    expect(d.state.dcInfo("a", 0)?.stats).toMatchObject({ returned: 50n, waste: 50n });
  });

  test("a lease retried after its tail came back gets only what it kept", () => {
    const { d, g2 } = setup();
    d.giveBack("a", 0, 150n, 200n, g2.fence, "ret");
    expect(granted(d.lease("a", 0, 100n, "g2"))).toMatchObject({
      replayed: true,
      grant: { start: 100n, end: 150n },
    });
    d.giveBack("a", 0, 100n, 150n, g2.fence, "ret2");
    expect(d.lease("a", 0, 100n, "g2")).toEqual({
      ok: false,
      code: "failed-precondition",
      message: 'the grant of request "g2" on sequence "a" dc 0 was returned in full',
    });
  });
});

describe("windows", () => {
  test("window grants are listed with their fence; segments are not", () => {
    const d = new Driver();
    d.create({ name: "a", type: 3, datacenters: 2, ordering: "dc" });
    d.lease("a", 0, 10n, "s1");
    const w = granted(d.lease("a", 0, 50n, "w1", "window")).grant;
    expect(w.kind).toBe("window");
    expect(d.state.windows("a", 0)).toEqual([{ start: 10n, end: 60n, fence: w.fence, requestId: "w1" }]);
    expect(d.state.windows("a", 1)).toEqual([]);
    expect(d.state.windows("zzz", 0)).toEqual([]);
  });

  test(`only the last ${WINDOW_LIMIT} windows are kept`, () => {
    const d = new Driver();
    d.create({ name: "a", type: 3 });
    for (let i = 0; i < WINDOW_LIMIT + 5; i++) d.lease("a", 0, 10n, `w${i}`, "window");
    const ws = d.state.windows("a", 0);
    expect(ws).toHaveLength(WINDOW_LIMIT);
    expect(ws[0]?.start).toBe(50n);
    expect(ws.at(-1)?.end).toBe(BigInt((WINDOW_LIMIT + 5) * 10));
  });

  test("a taken-back window tail is no longer reserved", () => {
    const d = new Driver();
    d.create({ name: "a", type: 3 });
    const w = granted(d.lease("a", 0, 100n, "w", "window")).grant;
    d.giveBack("a", 0, 40n, 100n, w.fence, "r1");
    expect(d.state.windows("a", 0)).toEqual([{ start: 0n, end: 40n, fence: w.fence, requestId: "w" }]);
    d.giveBack("a", 0, 0n, 40n, w.fence, "r2");
    expect(d.state.windows("a", 0)).toEqual([]);
    // Waste does not shrink a window: the range stays burnt.
    const w2 = granted(d.lease("a", 0, 100n, "w2", "window")).grant;
    d.lease("a", 0, 1n, "s");
    d.giveBack("a", 0, 50n, 100n, w2.fence, "r3");
    expect(d.state.windows("a", 0)).toEqual([{ start: 0n, end: 100n, fence: w2.fence, requestId: "w2" }]);
  });
});

describe("delete and re-create", () => {
  test("re-creating a name resumes above the old marks, and says so", () => {
    const d = new Driver();
    d.create({ name: "a", type: 3, datacenters: 2 });
    d.lease("a", 0, 100n, "r1");
    const w = granted(d.lease("a", 1, 30n, "r2", "window")).grant;
    d.must({ type: "DeleteSequence", name: "a" });
    expect(d.state.dcInfo("a", 0)?.hwm).toBe(100n);
    const again = d.must({
      type: "CreateSequence",
      def: seqDef({ name: "a", type: 3, datacenters: 2, ordering: "global", autoDisk: "memory" }),
      createdAtMs: 2_000,
    });
    expect(again).toMatchObject({
      resumed: true,
      revision: 3n,
      sequence: { createdAtMs: 2_000, createRevision: 3n, modRevision: 3n },
      message: 're-created sequence "a": leasing resumes above the marks kept when it was deleted',
    });
    expect(range(d.lease("a", 0, 10n, "r1"))).toEqual([100n, 110n]); // old request ids are forgotten
    expect(d.state.windows("a", 1)).toEqual([]);
    // The old incarnation's top grant is gone: its return is refused and cannot lower the mark.
    expect(d.giveBack("a", 1, 0n, 30n, w.fence, "ret")).toMatchObject({
      ok: false,
      code: "failed-precondition",
    });
    expect(d.state.dcInfo("a", 1)?.hwm).toBe(30n);
    expect(range(d.lease("a", 1, 1n, "r3"))).toEqual([30n, 31n]);
  });

  test("a re-creation that would move ids is rejected with the differences, and never re-issues", () => {
    const d = new Driver();
    d.create({ name: "a", type: 2, length: 3 });
    d.lease("a", 0, 900n, "all");
    d.must({ type: "DeleteSequence", name: "a" });
    unchanged(d, () => {
      const r = d.run({
        type: "CreateSequence",
        def: seqDef({ name: "a", type: 2, length: 4 }),
        createdAtMs: 0,
      });
      expect(r).toEqual({
        ok: false,
        code: "failed-precondition",
        message:
          'sequence "a" was deleted; re-creating it needs the same type, length, starting, step, datacenters, layout ' +
          "and (type 1) permutation key so that no id is issued twice (differs: length 3 → 4, starting 100 → 1000)",
      });
    });
    expect(d.state.get("a")).toBeUndefined();
    d.create({ name: "a", type: 2, length: 3 });
    expect(d.lease("a", 0, 1n, "more")).toMatchObject({ ok: false, code: "exhausted" });
  });
});

describe("snapshot", () => {
  function busy(): Driver {
    const d = new Driver();
    d.create({ name: "zeta", type: 1, length: 7, datacenters: 4 });
    d.create({ name: "alpha", type: 2, length: 3, datacenters: 2 });
    d.create({ name: "mid", type: 3, layout: "prefix", datacenters: 3, step: 5n });
    d.lease("zeta", 3, 1000n, "z1");
    d.lease("alpha", 1, 449n, "a1");
    d.lease("alpha", 1, 10n, "a2", "window");
    const g = granted(d.lease("mid", 2, 77n, "m1", "window")).grant;
    d.giveBack("mid", 2, 70n, 77n, g.fence, "m-ret");
    d.giveBack("alpha", 1, 0n, 5n, { term: 9, index: 9 }, "a-ret");
    d.must({ type: "UpdateSequence", name: "zeta", changes: { autoDisk: "elegant_close" } });
    d.create({ name: "gone", type: 3 });
    d.lease("gone", 0, 5n, "g");
    d.must({ type: "DeleteSequence", name: "gone" });
    return d;
  }

  test("restore(snapshot()) gives back the same state, byte for byte", () => {
    const d = busy();
    const snap = d.state.snapshot();
    const restored = LedgerState.restore(snap);
    expect(restored.snapshot()).toEqual(snap);
    expect(restored.revision).toBe(d.state.revision);
    expect(restored.counts).toEqual({ live: 3, deleted: 1 });
    expect(restored.list({ limit: 10 })).toEqual(d.state.list({ limit: 10 }));
    for (const [n, dc] of [
      ["alpha", 1],
      ["mid", 2],
      ["zeta", 3],
      ["gone", 0],
    ] as const) {
      expect(restored.dcInfo(n, dc)).toEqual(d.state.dcInfo(n, dc));
      expect(restored.windows(n, dc)).toEqual(d.state.windows(n, dc));
    }
    // The restored state behaves the same: replays, marks and the next fence.
    const next = new Driver(restored);
    next.index = d.index;
    for (const drv of [d, next]) {
      expect(drv.lease("alpha", 1, 449n, "a1")).toMatchObject({ ok: true, data: { replayed: true } });
      expect(drv.lease("alpha", 1, 10n, "new")).toMatchObject({ ok: false, code: "exhausted" });
      expect(range(drv.lease("mid", 2, 3n, "m2"))).toEqual([70n, 73n]);
    }
    expect(next.state.snapshot()).toEqual(d.state.snapshot());
  });

  test("the same commands give the same bytes; names and keys come out sorted", () => {
    const a = busy().state.snapshot();
    const b = busy().state.snapshot();
    expect(a).toEqual(b);
    const text = snapshotDocument(a);
    expect(text.indexOf('"name":"alpha"')).toBeLessThan(text.indexOf('"name":"gone"'));
    expect(text.indexOf('"name":"mid"')).toBeLessThan(text.indexOf('"name":"zeta"'));
    expect(text.startsWith('{"format":3,"revision":"6","sequences":[')).toBe(true);
  });

  test("a corrupt snapshot is refused loudly", () => {
    const good = snapshotDocument(busy().state.snapshot());
    const bad = (s: string) => () => LedgerState.restore(new TextEncoder().encode(s));
    expect(bad("")).toThrow("corrupt ledger snapshot: snapshot is not valid JSON");
    expect(bad('{"format":4,"revision":"0","sequences":[]}')).toThrow("unknown snapshot format 4");
    expect(bad(good.replace('"hwm":"450"', '"hwm":450'))).toThrow("must be a decimal integer string");
    expect(bad(good.replace('"step":"5"', '"step":"0"'))).toThrow("step must be > 0");
    expect(bad(good.replace('"name":"alpha"', '"name":"zzz"'))).toThrow("out of name order");
    expect(
      LedgerState.restore(new TextEncoder().encode('{"format":1,"revision":"0","sequences":[]}')).revision,
    ).toBe(0n);
  });

  test("a framed snapshot that is cut short or of an unknown format is refused", () => {
    const snap = Buffer.from(busy().state.snapshot());
    expect(snap.subarray(0, 4).toString("latin1")).toBe("DLS\x03");
    expect(() => LedgerState.restore(snap.subarray(0, snap.byteLength - 1))).toThrow(
      "corrupt ledger snapshot: truncated frame",
    );
    const other = Buffer.from(snap);
    other[3] = 4;
    expect(() => LedgerState.restore(other)).toThrow("unknown snapshot encoding");
    // The document form of the same state loads to the same state.
    const doc = new TextEncoder().encode(snapshotDocument(snap));
    expect(Buffer.compare(Buffer.from(LedgerState.restore(doc).snapshot()), snap)).toBe(0);
  });

  test("a snapshot written while commands apply holds the state of its start (copy on write)", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const d = busy();
      for (let i = 0; i < 30; i++) d.create({ name: `n${(i * 7919) % 31}`, type: 3, datacenters: 2 });
      const expected = Buffer.from(d.state.snapshot());
      const job = d.state.beginSnapshot();
      let rnd = seed;
      const pick = (n: number): number => {
        rnd = (rnd * 48271) % 2147483647;
        return rnd % n;
      };
      const names = [
        "alpha",
        "gone",
        "mid",
        "zeta",
        "new1",
        "new2",
        ...Array.from({ length: 31 }, (_, i) => `n${i}`),
      ];
      let done = false;
      while (!done) {
        for (let k = pick(4); k > 0; k--) {
          const name = names[pick(names.length)]!;
          switch (pick(4)) {
            case 0:
              d.run({
                type: "CreateSequence",
                def: seqDef({ name, type: 3, datacenters: 2 }),
                createdAtMs: 5,
              });
              break;
            case 1:
              d.run({ type: "DeleteSequence", name });
              break;
            case 2:
              d.lease(name, pick(2), 10n, `r${d.index}`);
              break;
            default:
              d.run({ type: "RaiseMark", name, dc: 0, to: 1000n });
          }
        }
        done = job.step(pick(3) + 1);
      }
      expect(Buffer.compare(Buffer.from(job.result()), expected), `seed ${seed}`).toBe(0);
      // The state went on: it now differs from the snapshot, and a new one shows it.
      expect(Buffer.compare(Buffer.from(d.state.snapshot()), expected)).not.toBe(0);
    }
  });
});

describe("applying raw entries", () => {
  test("malformed bytes are invalid-argument and change nothing", () => {
    const d = new Driver();
    d.create({ name: "a", type: 3 });
    unchanged(d, () => {
      for (const data of [new Uint8Array(), new Uint8Array([1, 0x7b]), new Uint8Array([9, 1, 2])]) {
        const r = d.state.applyBytes(data, d.next());
        expect(r).toMatchObject({ ok: false, code: "invalid-argument" });
        expect(!r.ok && r.message).toMatch(/^(command is|unknown command format)/);
      }
    });
  });

  test("well-formed bytes apply like the command", () => {
    const d = new Driver();
    d.create({ name: "a", type: 3 });
    const bytes = encodeCommand({
      type: "LeaseSegment",
      name: "a",
      dc: 0,
      size: 5n,
      requestId: "r",
      kind: "segment",
      returnToken: "ab".repeat(16),
    });
    expect(d.state.applyBytes(bytes, { term: 2, index: 7 })).toMatchObject({
      ok: true,
      data: { type: "LeaseSegment", grant: { start: 0n, end: 5n, fence: { term: 2, index: 7 } } },
    });
  });

  test("an impossible entry position is a programming error", () => {
    const d = new Driver();
    expect(() => d.state.apply({ type: "DeleteSequence", name: "a" }, { term: -1, index: 1 })).toThrow(
      RangeError,
    );
    expect(() => d.state.applyBytes(new Uint8Array(), { term: 1, index: 0.5 })).toThrow(RangeError);
  });
});

describe("only the holder of a grant can give it back", () => {
  test("a return with the public fence and the wrong token, or none, is refused and changes nothing", () => {
    const d = new Driver();
    d.create({ name: "a", type: 3 });
    const g = granted(d.lease("a", 0, 100n, "g")).grant;
    for (const token of ["", "0".repeat(32), tokenOf("someone else")]) {
      unchanged(d, () => {
        const r = d.giveBack("a", 0, 50n, 100n, g.fence, `stranger-${token}`, token);
        expect(r).toMatchObject({ ok: false, code: "failed-precondition" });
        expect(!r.ok && r.message).toMatch(/only the holder of a grant can return it/);
      });
    }
    // The holder's own token takes the tail back.
    expect(d.giveBack("a", 0, 50n, 100n, g.fence, "holder")).toMatchObject({
      ok: true,
      data: { accepted: true, hwm: 50n },
    });
  });

  test("a replayed lease answers the first grant's token, not the retry's", () => {
    const d = new Driver();
    d.create({ name: "a", type: 3 });
    const first = granted(d.lease("a", 0, 10n, "r")).grant;
    const again = d.run({
      type: "LeaseSegment",
      name: "a",
      dc: 0,
      size: 10n,
      requestId: "r",
      kind: "segment",
      returnToken: tokenOf("a retry proposes another"),
    });
    expect(again).toMatchObject({
      ok: true,
      data: { replayed: true, grant: { returnToken: first.returnToken } },
    });
  });

  test("grants of a format 1 snapshot carry no token and are never taken back", () => {
    const d = new Driver();
    d.create({ name: "a", type: 3 });
    const g = granted(d.lease("a", 0, 10n, "r")).grant;
    // The same state as a format 1 snapshot wrote it: tuples without tokens.
    const v2 = snapshotDocument(d.state.snapshot());
    const v1 = v2.replace('"format":3', '"format":1').replaceAll(`,"${g.returnToken}"`, "");
    const old = new Driver(LedgerState.restore(new TextEncoder().encode(v1)));
    old.index = d.index;
    expect(old.giveBack("a", 0, 0n, 10n, g.fence, "ret", "")).toMatchObject({ ok: false });
    expect(old.giveBack("a", 0, 0n, 10n, g.fence, "ret2", g.returnToken)).toMatchObject({ ok: false });
    expect(old.state.dcInfo("a", 0)?.hwm).toBe(10n);
  });
});

describe("expected revisions are decided by the state machine", () => {
  test("an update or delete at another revision is aborted and changes nothing", () => {
    const d = new Driver();
    const rev = d.create({ name: "a", type: 3 }).revision;
    unchanged(d, () => {
      expect(
        d.run({
          type: "UpdateSequence",
          name: "a",
          changes: { ordering: "global" },
          expectedRevision: rev + 1n,
        }),
      ).toMatchObject({ ok: false, code: "aborted" });
      expect(d.run({ type: "DeleteSequence", name: "a", expectedRevision: rev + 5n })).toMatchObject({
        ok: false,
        code: "aborted",
      });
    });
    // Two updates that both expect `rev`: the first applies, the second is aborted.
    const upd = { type: "UpdateSequence", name: "a", expectedRevision: rev } as const;
    expect(d.run({ ...upd, changes: { autoDisk: "memory" } })).toMatchObject({ ok: true });
    expect(d.run({ ...upd, changes: { autoDisk: "pre-base" } })).toMatchObject({
      ok: false,
      code: "aborted",
    });
    expect(d.state.get("a")?.def.autoDisk).toBe("memory");
  });
});

describe("type 1 permutation keys", () => {
  const lease = (d: Driver, requestId: string, keyFingerprint?: string) =>
    d.run({
      type: "LeaseSegment",
      name: "t",
      dc: 0,
      size: 10n,
      requestId,
      kind: "segment",
      returnToken: tokenOf(requestId),
      ...(keyFingerprint === undefined ? {} : { keyFingerprint }),
    });

  test("the first lease binds its key; a lease with another key is refused and changes nothing", () => {
    const d = new Driver();
    d.create({ name: "t", type: 1, length: 6 });
    expect(lease(d, "a", "aaaaaaaaaaaaaaaa")).toMatchObject({ ok: true });
    const bound = d.state.get("t")!;
    expect(bound.def.keyFingerprint).toBe("aaaaaaaaaaaaaaaa");
    expect(bound.modRevision).toBe(2n);
    unchanged(d, () => {
      const r = lease(d, "b", "bbbbbbbbbbbbbbbb");
      expect(r).toMatchObject({ ok: false, code: "failed-precondition" });
      expect(!r.ok && r.message).toMatch(/permutation secret .* is not the one sequence "t" was bound to/);
    });
    expect(lease(d, "c", "aaaaaaaaaaaaaaaa")).toMatchObject({ ok: true });
  });

  test("a key given at creation is kept; a re-creation inherits it or must give the same", () => {
    const d = new Driver();
    d.create({ name: "t", type: 1, length: 6, keyFingerprint: "cccccccccccccccc" });
    expect(lease(d, "a", "dddddddddddddddd")).toMatchObject({ ok: false, code: "failed-precondition" });
    d.must({ type: "DeleteSequence", name: "t" });
    expect(
      d.run({
        type: "CreateSequence",
        def: seqDef({ name: "t", type: 1, length: 6, keyFingerprint: "dddddddddddddddd" }),
        createdAtMs: 1,
      }),
    ).toMatchObject({ ok: false, code: "failed-precondition" });
    expect(d.create({ name: "t", type: 1, length: 6 }).sequence.def.keyFingerprint).toBe("cccccccccccccccc");
  });
});

describe("the cluster identity and raised marks", () => {
  test("the first InitCluster gives the identity; later ones change nothing; snapshots keep it", () => {
    const d = new Driver();
    expect(d.state.identity).toBe("");
    expect(d.must({ type: "InitCluster", identity: "a".repeat(32) })).toEqual({
      type: "InitCluster",
      identity: "a".repeat(32),
      changed: true,
    });
    unchanged(d, () => {
      expect(d.must({ type: "InitCluster", identity: "b".repeat(32) })).toMatchObject({
        identity: "a".repeat(32),
        changed: false,
      });
    });
    expect(LedgerState.restore(d.state.snapshot()).identity).toBe("a".repeat(32));
    expect(d.run({ type: "InitCluster", identity: "not hex" })).toMatchObject({
      ok: false,
      code: "invalid-argument",
    });
  });

  test("RaiseMark lifts a mark (also of a deleted name), never lowers it, and grants resume above", () => {
    const d = new Driver();
    d.create({ name: "a", type: 2, length: 3, datacenters: 2 });
    const g = granted(d.lease("a", 0, 10n, "r")).grant;
    expect(d.must({ type: "RaiseMark", name: "a", dc: 0, to: 100n })).toMatchObject({
      hwm: 100n,
      raised: true,
    });
    unchanged(d, () => {
      expect(d.must({ type: "RaiseMark", name: "a", dc: 0, to: 50n })).toMatchObject({
        hwm: 100n,
        raised: false,
      });
    });
    // The old top grant is no longer top-most: its tail comes back as waste, the mark stays.
    expect(d.giveBack("a", 0, 5n, 10n, g.fence, "ret")).toMatchObject({
      ok: true,
      data: { accepted: false },
    });
    expect(range(d.lease("a", 0, 5n, "r2"))).toEqual([100n, 105n]);
    d.must({ type: "DeleteSequence", name: "a" });
    expect(d.must({ type: "RaiseMark", name: "a", dc: 1, to: 300n })).toMatchObject({ raised: true });
    d.create({ name: "a", type: 2, length: 3, datacenters: 2 });
    expect(range(d.lease("a", 1, 5n, "r3"))).toEqual([300n, 305n]);
    // Bad input changes nothing.
    unchanged(d, () => {
      expect(d.run({ type: "RaiseMark", name: "a", dc: 2, to: 1n })).toMatchObject({
        code: "invalid-argument",
      });
      expect(d.run({ type: "RaiseMark", name: "a", dc: 0, to: 451n })).toMatchObject({
        code: "invalid-argument",
      });
      expect(d.run({ type: "RaiseMark", name: "nope", dc: 0, to: 1n })).toMatchObject({ code: "not-found" });
    });
  });
});

describe("backups and the hold after a restore", () => {
  test("a backup keeps catalog, marks and identity, but no grant, memo, window or token", () => {
    const d = new Driver();
    d.must({ type: "InitCluster", identity: "c".repeat(32) });
    d.create({ name: "a", type: 3 });
    const g = granted(d.lease("a", 0, 10n, "r", "window")).grant;
    const text = snapshotDocument(d.state.snapshot({ backup: true }));
    expect(text).not.toContain(g.returnToken);
    expect(text).toContain('"restoreHold":[]');
    const restored = LedgerState.restore(new TextEncoder().encode(text));
    expect(restored.identity).toBe("c".repeat(32));
    expect(restored.dcInfo("a", 0)).toMatchObject({ hwm: 10n, top: undefined });
    expect(restored.windows("a", 0)).toEqual([]);
    expect(restored.onHold).toBe(true);
  });

  test("on hold, a (sequence, dc) leases only once RaiseMark named it; ReleaseRestore ends the hold", () => {
    const d = new Driver();
    d.create({ name: "a", type: 3, datacenters: 2 });
    granted(d.lease("a", 0, 10n, "r"));
    const held = new Driver(LedgerState.restore(d.state.snapshot({ backup: true })));
    held.index = d.index;
    unchanged(held, () => {
      const r = held.lease("a", 0, 5n, "r1");
      expect(r).toMatchObject({ ok: false, code: "failed-precondition" });
      expect(!r.ok && r.message).toMatch(/restored from a backup and does not know ids issued after it/);
    });
    // Raising (even to where the mark already is) releases that (sequence, dc) only.
    expect(held.must({ type: "RaiseMark", name: "a", dc: 0, to: 5n })).toMatchObject({ raised: false });
    expect(range(held.lease("a", 0, 5n, "r2"))).toEqual([10n, 15n]);
    expect(held.lease("a", 1, 5n, "r3")).toMatchObject({ ok: false, code: "failed-precondition" });
    // The hold survives a snapshot, then ends for everything.
    const again = new Driver(LedgerState.restore(held.state.snapshot()));
    again.index = held.index;
    expect(again.state.onHold).toBe(true);
    expect(range(again.lease("a", 0, 5n, "r4"))).toEqual([15n, 20n]);
    expect(again.must({ type: "ReleaseRestore" })).toEqual({ type: "ReleaseRestore", held: true });
    expect(range(again.lease("a", 1, 5n, "r5"))).toEqual([0n, 5n]);
    expect(again.must({ type: "ReleaseRestore" })).toEqual({ type: "ReleaseRestore", held: false });
  });
});
