import { describe, expect, it } from "vitest";
import type { Entry, Message, NodeId } from "../src/index.js";
import { AssertionError, EntryType, MessageType, Prng, message } from "../src/index.js";
import { Cluster, bytes } from "./harness.js";

// Nothing a peer sends trips an assertion: a message that breaks a rule is dropped with a reason,
// and changes nothing. (One forged message with term 0 used to stop a ledger node.)

function entries(from: number, terms: readonly number[]): Entry[] {
  return terms.map((term, i) => ({ index: from + i, term, type: EntryType.Normal, data: bytes(`x${i}`) }));
}

/** A 3-node cluster with leader 1 and a few committed entries. */
function cluster(): Cluster {
  const c = new Cluster([1, 2, 3]);
  c.elect(1);
  for (let i = 0; i < 3; i++) c.propose(1, `v${i}`);
  c.stabilize();
  return c;
}

function statusOf(c: Cluster, id: NodeId): string {
  const s = c.node(id).status();
  return JSON.stringify({ hard: s.hardState, soft: s.softState, last: s.lastIndex, applied: s.applied });
}

describe("a message that breaks a rule is dropped with a reason, and changes nothing", () => {
  const cases: [string, (c: Cluster) => { to: NodeId; m: Message }, string][] = [
    ["a term-0 append", () => ({ to: 2, m: message({ type: MessageType.App, from: 1, to: 2 }) }), "no-term"],
    [
      "a local type from the network",
      () => ({ to: 2, m: message({ type: MessageType.Hup, from: 1, to: 2, term: 1 }) }),
      "local-type",
    ],
    [
      "a message addressed to another node",
      (c) => ({ to: 2, m: message({ type: MessageType.Heartbeat, from: 1, to: 3, term: c.term(1) }) }),
      "wrong-recipient",
    ],
    [
      "a message claiming to come from the receiver",
      (c) => ({ to: 2, m: message({ type: MessageType.Vote, from: 2, to: 2, term: c.term(1) + 1 }) }),
      "wrong-recipient",
    ],
    [
      "an append whose entries skip an index",
      (c) => {
        const t = c.term(1);
        const last = c.node(2).status().lastIndex;
        const m = message({
          type: MessageType.App,
          from: 1,
          to: 2,
          term: t,
          index: last,
          logTerm: t,
          entries: [...entries(last + 1, [t]), ...entries(last + 3, [t])],
        });
        return { to: 2, m };
      },
      "malformed-append",
    ],
    [
      "an append with an entry of a later term than its sender's",
      (c) => {
        const t = c.term(1);
        const last = c.node(2).status().lastIndex;
        const m = message({
          type: MessageType.App,
          from: 1,
          to: 2,
          term: t,
          index: last,
          logTerm: t,
          entries: entries(last + 1, [t + 4]),
        });
        return { to: 2, m };
      },
      "malformed-append",
    ],
    [
      "a heartbeat committing beyond the log",
      (c) => ({
        to: 2,
        m: message({ type: MessageType.Heartbeat, from: 1, to: 2, term: c.term(1), commit: 10_000 }),
      }),
      "commit-beyond-log",
    ],
    [
      "an ack beyond the leader's log",
      (c) => ({
        to: 1,
        m: message({ type: MessageType.AppResp, from: 2, to: 1, term: c.term(1), index: 10_000 }),
      }),
      "ack-beyond-log",
    ],
    [
      "a snapshot at index 0",
      (c) => ({
        to: 2,
        m: message({
          type: MessageType.Snap,
          from: 1,
          to: 2,
          term: c.term(1) + 1,
          snapshot: {
            meta: { index: 0, term: 0, confState: { voters: [1], learners: [] } },
            data: bytes(""),
          },
        }),
      }),
      "malformed-snapshot",
    ],
    [
      "a snapshot without voters",
      (c) => ({
        to: 2,
        m: message({
          type: MessageType.Snap,
          from: 1,
          to: 2,
          term: c.term(1) + 1,
          snapshot: {
            meta: { index: 99, term: 1, confState: { voters: [], learners: [] } },
            data: bytes(""),
          },
        }),
      }),
      "malformed-snapshot",
    ],
  ];

  for (const [what, make, kind] of cases) {
    it(what, () => {
      const c = cluster();
      const { to, m } = make(c);
      const before = statusOf(c, to);
      expect(c.node(to).step(m)?.kind).toBe(kind);
      expect(c.node(to).hasReady()).toBe(false);
      expect(statusOf(c, to)).toBe(before);
      // The cluster goes on as if nothing had been sent.
      c.propose(1, "after");
      c.stabilize();
      for (const id of [1, 2, 3]) expect(c.peer(id).state.at(-1)).toBe("after");
    });
  }
});

/** Every field drawn from values near the node's own, valid or not. */
function randomMessage(r: Prng, c: Cluster, to: NodeId): Message {
  const types = Object.values(MessageType);
  const t = c.term(to);
  const last = c.node(to).status().lastIndex;
  const near = (x: number, spread: number): number => Math.max(0, x + r.intn(2 * spread + 1) - spread);
  const type = types[r.intn(types.length)]!;
  const index = near(last, 4);
  const n = r.intn(4);
  const ents: Entry[] = [];
  for (let i = 0; i < n; i++) {
    ents.push({
      index: r.float() < 0.8 ? index + 1 + i : near(index, 3),
      term: near(t, 2),
      type: r.float() < 0.9 ? EntryType.Normal : EntryType.ConfChange,
      data: bytes(`f${i}`),
    });
  }
  const voters = [1, 2, 3, 9].filter(() => r.float() < 0.5);
  return message({
    type,
    to: r.float() < 0.9 ? to : r.intn(5),
    from: [0, 1, 2, 3, 9][r.intn(5)]!,
    term: r.float() < 0.15 ? 0 : near(t, 2),
    logTerm: near(t, 2),
    index,
    entries: ents,
    commit: near(last, 6),
    reject: r.float() < 0.3,
    rejectHint: near(last, 6),
    context: r.intn(3),
    ...(type === MessageType.Snap || r.float() < 0.02
      ? {
          snapshot: {
            meta: { index: near(last, 6), term: near(t, 2), confState: { voters, learners: [] } },
            data: bytes("[]"),
          },
        }
      : {}),
  });
}

/** The harness's safety checks (harness.ts), which a forger that follows the rules can break. */
const HARNESS_CHECKS = /two leaders in term|applied with term|applied \d+ after|did not stabilize/;

describe("random messages from a hostile peer", () => {
  it("never trip an assertion, in 200 seeded runs", () => {
    let refused = 0;
    let stepped = 0;
    let harnessStops = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const r = new Prng(seed);
      const c = cluster();
      try {
        for (let i = 0; i < 150; i++) {
          const to = 1 + r.intn(3);
          if (r.float() < 0.6) {
            stepped++;
            if (c.node(to).step(randomMessage(r, c, to))) refused++;
          } else if (r.float() < 0.5) {
            c.propose(1, `p${i}`);
          } else {
            c.tick(to);
          }
          c.readyAll();
          c.deliver();
        }
      } catch (e) {
        // A forged message that follows every rule can still mislead a node (Raft trusts its
        // peers; the transport authenticates them): the harness's own safety checks may then
        // stop the run. Anything else, an assertion of the core above all, may not.
        const harnessCheck =
          e instanceof Error && !(e instanceof AssertionError) && HARNESS_CHECKS.test(e.message);
        if (!harnessCheck) throw new Error(`seed ${seed}: ${String(e)}`, { cause: e });
        harnessStops++;
      }
    }
    expect(stepped).toBeGreaterThan(10_000);
    // Most random messages break some rule; the rest reached the core and did not crash it.
    expect(refused).toBeGreaterThan(stepped / 4);
    expect(refused).toBeLessThan(stepped);
    expect(harnessStops).toBeLessThan(200);
  });
});
