// The rules of the Raft paper (Ongaro & Ousterhout, "In Search of an Understandable Consensus
// Algorithm"), one by one, in the spirit of etcd-io/raft's raft_paper_test.go. Section numbers
// refer to the paper; "#n" to /work/shared/RAFT-PITFALLS.md.

import { describe, expect, test } from "vitest";
import type { Entry, Message, NodeId, Role } from "../src/index.js";
import { EntryType, message, MessageType } from "../src/index.js";
import { bytes, Cluster, ELECTION_TICKS } from "./harness.js";

const { App, AppResp, Heartbeat, PreVote, PreVoteResp, Vote, VoteResp } = MessageType;

const ent = (index: number, term: number): Entry => ({
  index,
  term,
  type: EntryType.Normal,
  data: bytes(`${index}@${term}`),
});

type Fields = Partial<Message> & Pick<Message, "type" | "from" | "to">;

/** Step a crafted message into its recipient, run one Ready there, and return what it sent. */
function stepAndCollect(c: Cluster, fields: Fields): Message[] {
  c.node(fields.to).step(message(fields));
  c.ready(fields.to);
  return c.take((m) => m.from === fields.to);
}

const isElection = (m: Message): boolean =>
  m.type === PreVote || m.type === PreVoteResp || m.type === Vote || m.type === VoteResp;

/** Bring node `id` of a fresh cluster into `role`, with no messages left queued. */
function putInRole(c: Cluster, id: NodeId, role: Role): void {
  switch (role) {
    case "follower":
      break;
    case "pre-candidate":
      c.campaign(id);
      break;
    case "candidate":
      // Let the pre-vote through, hold the real vote requests.
      c.campaign(id);
      c.stabilize((m) => m.type === PreVote || m.type === PreVoteResp);
      break;
    case "leader":
      c.elect(id);
      break;
  }
  c.readyAll();
  c.take();
  expect(c.role(id)).toBe(role);
}

describe("§5.1 terms", () => {
  const roles: Role[] = ["follower", "pre-candidate", "candidate", "leader"];

  test.each(roles)("a %s that receives an append of a higher term adopts the term and follows", (role) => {
    const c = new Cluster([1, 2, 3]);
    putInRole(c, 1, role);
    const term = c.term(1) + 3;
    stepAndCollect(c, { type: App, from: 2, to: 1, term, index: 1, logTerm: 1 });
    expect(c.role(1)).toBe("follower");
    expect(c.term(1)).toBe(term);
    expect(c.lead(1)).toBe(2);
    // The new term is durable before anything else happens.
    expect(c.peer(1).storage.initialState().hardState.term).toBe(term);
  });

  test.each(roles)("a %s that receives a rejection of a higher term adopts the term, leaderless", (role) => {
    const c = new Cluster([1, 2, 3]);
    putInRole(c, 1, role);
    const term = c.term(1) + 1;
    stepAndCollect(c, { type: AppResp, from: 2, to: 1, term, reject: true });
    expect(c.role(1)).toBe("follower");
    expect(c.term(1)).toBe(term);
    expect(c.lead(1)).toBe(0);
  });

  test("an append of a stale term changes nothing and is answered with the current term", () => {
    const c = new Cluster([1, 2, 3], { setup: { 1: { term: 5 } } });
    const out = stepAndCollect(c, {
      type: App,
      from: 2,
      to: 1,
      term: 3,
      index: 1,
      logTerm: 1,
      entries: [ent(2, 3)],
      commit: 2,
    });
    expect(c.logTerms(1)).toEqual([1]);
    expect(c.commit(1)).toBe(1);
    expect(c.term(1)).toBe(5);
    // The reply tells the stale leader about term 5, so it steps down.
    expect(out).toEqual([expect.objectContaining({ type: AppResp, to: 2, term: 5 })]);
  });

  test("a vote request of a stale term is not granted", () => {
    const c = new Cluster([1, 2, 3], { setup: { 1: { term: 5 } } });
    const out = stepAndCollect(c, { type: Vote, from: 2, to: 1, term: 4, index: 9, logTerm: 4 });
    expect(out.filter((m) => m.type === VoteResp && !m.reject)).toEqual([]);
    expect(c.node(1).status().hardState).toMatchObject({ term: 5, vote: 0 });
  });

  test("a stale vote grant is not counted in a later election (#9)", () => {
    const c = new Cluster([1, 2, 3, 4, 5], { options: { preVote: false } });
    c.campaign(1); // term 2
    c.readyAll();
    c.deliver((m) => m.type === Vote && (m.to === 2 || m.to === 3));
    c.readyAll();
    const term2Grants = c.take((m) => m.type === VoteResp);
    expect(term2Grants).toHaveLength(2);
    c.take();
    c.campaign(1); // Times out again: term 3.
    c.readyAll();
    c.take();
    expect(c.term(1)).toBe(3);
    c.send(...term2Grants);
    c.deliver();
    // Two grants from term 2 plus its own vote would be a majority of 5, but they are stale.
    expect(c.role(1)).toBe("candidate");
  });

  test("a stale append ack is not counted toward commitment (#9)", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    const { index } = okProposal(c, 1, "x");
    c.readyAll();
    c.take();
    // A forged ack from an earlier term for the new entry: the leader must not commit on it.
    c.node(1).step(message({ type: AppResp, from: 2, to: 1, term: 1, index }));
    c.ready(1);
    expect(c.commit(1)).toBe(index - 1);
  });
});

describe("§5.2 leader election", () => {
  test("a follower that hears nothing for an election timeout starts a pre-vote, keeping its term", () => {
    const c = new Cluster([1, 2, 3]);
    c.tick(1, 2 * ELECTION_TICKS - 1);
    expect(c.role(1)).toBe("pre-candidate");
    expect(c.term(1)).toBe(1);
    const rd = c.ready(1);
    // Nothing to persist: a pre-vote round changes neither term nor vote.
    expect(rd?.hardState).toBeUndefined();
    expect(c.take().map((m) => [m.type, m.to, m.term, m.index, m.logTerm])).toEqual([
      [PreVote, 2, 2, 1, 1],
      [PreVote, 3, 2, 1, 1],
    ]);
  });

  test("election timeouts are randomized in [electionTicks, 2 * electionTicks)", () => {
    const seen = new Set<number>();
    for (let seed = 1; seed <= 30; seed++) {
      const c = new Cluster([1, 2, 3], { seed });
      let ticks = 0;
      while (c.role(1) === "follower" && ticks < 100) {
        c.tick(1);
        ticks++;
      }
      expect(ticks).toBeGreaterThanOrEqual(ELECTION_TICKS);
      expect(ticks).toBeLessThan(2 * ELECTION_TICKS);
      seen.add(ticks);
    }
    expect(seen.size).toBeGreaterThan(3);
  });

  test("a candidate votes for itself and persists that vote with its vote requests (#10)", () => {
    const c = new Cluster([1, 2, 3], { options: { preVote: false } });
    c.campaign(1);
    const rd = c.ready(1);
    expect(rd?.hardState).toMatchObject({ term: 2, vote: 1 });
    expect(rd?.mustSync).toBe(true);
    expect(rd?.messages.map((m) => [m.type, m.to, m.term])).toEqual([
      [Vote, 2, 2],
      [Vote, 3, 2],
    ]);
  });

  test.each([
    { size: 1, grants: [], rejects: [], role: "leader" },
    { size: 3, grants: [2], rejects: [], role: "leader" },
    { size: 3, grants: [], rejects: [2], role: "candidate" },
    { size: 3, grants: [], rejects: [2, 3], role: "follower" },
    { size: 5, grants: [2, 3], rejects: [], role: "leader" },
    { size: 5, grants: [2], rejects: [3, 4], role: "candidate" },
    { size: 5, grants: [2], rejects: [3, 4, 5], role: "follower" },
  ])(
    "with $size voters, grants from $grants and rejections from $rejects: $role",
    ({ size, grants, rejects, role }) => {
      const ids = Array.from({ length: size }, (_, i) => i + 1);
      const c = new Cluster(ids, { options: { preVote: false } });
      c.campaign(1);
      c.readyAll();
      c.take();
      for (const from of grants) c.node(1).step(message({ type: VoteResp, from, to: 1, term: 2 }));
      for (const from of rejects)
        c.node(1).step(message({ type: VoteResp, from, to: 1, term: 2, reject: true }));
      expect(c.role(1)).toBe(role);
      expect(c.term(1)).toBe(2);
    },
  );

  test("a node grants one vote per term, first come first served, and repeats it to the same candidate", () => {
    const c = new Cluster([1, 2, 3]);
    const ask = (from: NodeId): Message[] =>
      stepAndCollect(c, { type: Vote, from, to: 1, term: 2, index: 1, logTerm: 1 });
    expect(ask(2)).toEqual([expect.objectContaining({ type: VoteResp, to: 2, term: 2, reject: false })]);
    expect(ask(3)).toEqual([expect.objectContaining({ type: VoteResp, to: 3, reject: true })]);
    expect(ask(2)).toEqual([expect.objectContaining({ type: VoteResp, to: 2, reject: false })]);
    expect(c.node(1).status().hardState).toMatchObject({ term: 2, vote: 2 });
  });

  test("the vote is in the hardState of the very Ready that sends the grant (#10)", () => {
    const c = new Cluster([1, 2, 3]);
    c.node(1).step(message({ type: Vote, from: 2, to: 1, term: 2, index: 1, logTerm: 1 }));
    const rd = c.ready(1);
    expect(rd?.hardState).toMatchObject({ term: 2, vote: 2 });
    expect(rd?.mustSync).toBe(true);
    expect(rd?.messages).toEqual([expect.objectContaining({ type: VoteResp, to: 2, reject: false })]);
  });

  test("a vote survives a restart: the restarted node does not vote again in the same term (#8)", () => {
    const c = new Cluster([1, 2, 3]);
    stepAndCollect(c, { type: Vote, from: 2, to: 1, term: 2, index: 1, logTerm: 1 });
    c.restart(1);
    expect(c.node(1).status().hardState).toMatchObject({ term: 2, vote: 2 });
    const out = stepAndCollect(c, { type: Vote, from: 3, to: 1, term: 2, index: 5, logTerm: 2 });
    expect(out).toEqual([expect.objectContaining({ type: VoteResp, to: 3, reject: true })]);
  });

  test("a candidate that lost keeps its vote for the term: votedFor changes only with the term (#8)", () => {
    const c = new Cluster([1, 2, 3], { options: { preVote: false } });
    c.campaign(1);
    c.readyAll();
    c.take();
    c.node(1).step(message({ type: VoteResp, from: 2, to: 1, term: 2, reject: true }));
    c.node(1).step(message({ type: VoteResp, from: 3, to: 1, term: 2, reject: true }));
    expect(c.role(1)).toBe("follower");
    expect(c.node(1).status().hardState).toMatchObject({ term: 2, vote: 1 });
    const out = stepAndCollect(c, { type: Vote, from: 3, to: 1, term: 2, index: 5, logTerm: 2 });
    expect(out).toEqual([expect.objectContaining({ type: VoteResp, to: 3, reject: true })]);
  });

  test("a follower that voted keeps the vote once it hears from the leader of that term (#8)", () => {
    const c = new Cluster([1, 2, 3]);
    stepAndCollect(c, { type: Vote, from: 2, to: 1, term: 2, index: 1, logTerm: 1 });
    stepAndCollect(c, { type: Heartbeat, from: 2, to: 1, term: 2 });
    expect(c.lead(1)).toBe(2);
    expect(c.node(1).status().hardState).toMatchObject({ term: 2, vote: 2 });
  });

  test("a candidate that hears from a leader of its own term steps down and follows it", () => {
    const c = new Cluster([1, 2, 3]);
    putInRole(c, 1, "candidate");
    stepAndCollect(c, { type: App, from: 2, to: 1, term: 2, index: 1, logTerm: 1, entries: [ent(2, 2)] });
    expect(c.role(1)).toBe("follower");
    expect(c.lead(1)).toBe(2);
    expect(c.term(1)).toBe(2);
    expect(c.logTerms(1)).toEqual([1, 2]);
  });

  test("a pre-candidate that hears from the current leader goes back to following it (#21)", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(2);
    c.campaign(1); // e.g. it missed a few heartbeats
    expect(c.role(1)).toBe("pre-candidate");
    c.readyAll();
    c.take();
    stepAndCollect(c, { type: Heartbeat, from: 2, to: 1, term: c.term(2) });
    expect(c.role(1)).toBe("follower");
    expect(c.lead(1)).toBe(2);
    expect(c.term(1)).toBe(c.term(2));
  });

  test("a pre-vote grant carries the request's term, and changes nothing on the voter (#19)", () => {
    const c = new Cluster([1, 2, 3]);
    const out = stepAndCollect(c, { type: PreVote, from: 2, to: 1, term: 6, index: 1, logTerm: 1 });
    expect(out).toEqual([expect.objectContaining({ type: PreVoteResp, to: 2, term: 6, reject: false })]);
    expect(c.node(1).status().hardState).toMatchObject({ term: 1, vote: 0 });
  });

  test("a pre-vote grant from a voter at a lower term wins the pre-candidate an election (#19)", () => {
    // Node 1 is at term 5; nodes 2 and 3 are at term 1 (they missed those elections).
    const c = new Cluster([1, 2, 3], { setup: { 1: { term: 5 } } });
    c.elect(1);
    expect(c.term(1)).toBe(6);
    expect([c.lead(2), c.lead(3)]).toEqual([1, 1]);
  });

  test("a new leader appends an empty entry of its term, whose commit commits the entries before it", () => {
    // Index 2 was appended in term 2 by a leader that failed before committing it.
    const c = new Cluster([1, 2, 3], { setup: { 1: { terms: [2] }, 2: { terms: [2] }, 3: { terms: [2] } } });
    c.campaign(1);
    c.stabilize(isElection);
    expect(c.role(1)).toBe("leader");
    expect(c.node(1).entries(3, 4)).toEqual([
      { index: 3, term: 3, type: EntryType.Normal, data: new Uint8Array() },
    ]);
    expect(c.commit(1)).toBe(1);
    c.stabilize();
    for (const id of [1, 2, 3]) {
      expect(c.commit(id)).toBe(3);
      expect(c.peer(id).appliedEntries.map((e) => [e.index, e.term])).toEqual([
        [2, 2],
        [3, 3],
      ]);
    }
  });
});

describe("§5.3 log replication", () => {
  test("the leader sends a proposal to every follower and commits it once a majority holds it", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    const { index } = okProposal(c, 1, "x");
    const rd = c.ready(1);
    expect(rd?.entries).toEqual([expect.objectContaining({ index, term: 2 })]);
    expect(rd?.committedEntries).toEqual([]);
    expect(c.queue.map((m) => [m.type, m.to, m.entries.map((e) => e.index)])).toEqual([
      [App, 2, [index]],
      [App, 3, [index]],
    ]);
    // Node 2 appends and acks; node 3's copy is still in flight.
    c.deliver((m) => m.to === 2);
    const rd2 = c.ready(2);
    expect(rd2?.entries.map((e) => e.index)).toEqual([index]);
    // The ack travels in the Ready that persists the entry (#10).
    expect(rd2?.messages).toEqual([expect.objectContaining({ type: AppResp, to: 1, index })]);
    c.deliver((m) => m.to === 1);
    expect(c.commit(1)).toBe(index);
    // The next Ready applies it, and tells the followers the new commit index.
    const rd3 = c.ready(1);
    expect(rd3?.committedEntries.map((e) => e.index)).toEqual([index]);
    const commits = c.take((m) => m.type === App && m.commit === index);
    expect(commits.map((m) => m.to)).toEqual([2, 3]);
    c.send(...commits);
    c.stabilize();
    expect(c.peer(3).state).toEqual(["x"]);
  });

  test("a follower that acks after the commit advanced is told the commit index without a heartbeat", () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    c.stabilize(isElection);
    c.readyAll();
    // Node 2 acks the new leader's empty entry first: it commits.
    c.stabilize((m) => m.to === 2 || m.from === 2);
    expect(c.commit(1)).toBe(2);
    // Node 3's probe was outstanding then; its ack comes now, and no tick happens.
    c.stabilize();
    expect(c.commit(3)).toBe(2);
    expect(c.peer(3).appliedIndex).toBe(2);
  });

  test("a one-node leader commits only after its own write is durable (#11)", () => {
    const c = new Cluster([1]);
    c.elect(1);
    const { index } = okProposal(c, 1, "x");
    const rd1 = c.ready(1);
    expect(rd1?.entries.map((e) => e.index)).toEqual([index]);
    expect(rd1?.committedEntries).toEqual([]);
    expect(rd1?.hardState?.commit ?? c.peer(1).storage.initialState().hardState.commit).toBeLessThan(index);
    const rd2 = c.ready(1);
    expect(rd2?.hardState?.commit).toBe(index);
    expect(rd2?.committedEntries.map((e) => e.index)).toEqual([index]);
  });

  test.each([
    { name: "matching prev", index: 3, logTerm: 3, accept: true },
    { name: "prev of the wrong term", index: 3, logTerm: 2, accept: false },
    { name: "prev beyond our log", index: 4, logTerm: 3, accept: false },
    { name: "matching earlier prev", index: 2, logTerm: 2, accept: true },
  ])("consistency check: an append with $name is accepted: $accept", ({ index, logTerm, accept }) => {
    const c = new Cluster([1, 2, 3], { setup: { 1: { terms: [2, 3] } } });
    const out = stepAndCollect(c, { type: App, from: 2, to: 1, term: 3, index, logTerm });
    expect(out).toEqual([expect.objectContaining({ type: AppResp, to: 2, reject: !accept })]);
    expect(c.logTerms(1)).toEqual([1, 2, 3]);
  });

  test.each([
    { name: "appends after a matching last entry", index: 3, logTerm: 3, ents: [[4, 3]], want: [1, 2, 3, 3] },
    {
      name: "truncates a conflicting suffix",
      index: 2,
      logTerm: 2,
      ents: [
        [3, 4],
        [4, 4],
      ],
      want: [1, 2, 4, 4],
    },
    { name: "truncates from the first conflict", index: 1, logTerm: 1, ents: [[2, 4]], want: [1, 4] },
    {
      name: "keeps entries after a stale, non-conflicting append (#3)",
      index: 1,
      logTerm: 1,
      ents: [[2, 2]],
      want: [1, 2, 3],
    },
    {
      name: "ignores an append of entries it already has (#3)",
      index: 1,
      logTerm: 1,
      ents: [
        [2, 2],
        [3, 3],
      ],
      want: [1, 2, 3],
    },
  ])("a follower $name", ({ index, logTerm, ents, want }) => {
    const c = new Cluster([1, 2, 3], { setup: { 1: { terms: [2, 3] } } });
    const entries = ents.map(([i, t]) => ent(i!, t!));
    const out = stepAndCollect(c, { type: App, from: 2, to: 1, term: 4, index, logTerm, entries });
    expect(c.logTerms(1)).toEqual(want);
    expect(out).toEqual([
      expect.objectContaining({ type: AppResp, reject: false, index: index + entries.length }),
    ]);
  });

  test("a stale append does not truncate entries already acknowledged (#3)", () => {
    // Scenario level: the leader's first append is delayed and delivered after a later one.
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    okProposal(c, 1, "a");
    c.ready(1);
    const first = c.take((m) => m.to === 2);
    okProposal(c, 1, "b");
    c.stabilize();
    expect(c.peer(2).state).toEqual(["a", "b"]);
    const last = c.node(2).status().lastIndex;
    c.send(...first);
    c.stabilize();
    expect(c.node(2).status().lastIndex).toBe(last);
    expect(c.peer(2).state).toEqual(["a", "b"]);
  });

  test("a follower commits min(leaderCommit, last entry verified by the message) (#2)", () => {
    // Node 1 is a deposed term-2 leader with an uncommitted tail at 3 and 4.
    const c = new Cluster([1, 2, 3], { setup: { 1: { terms: [2, 2, 2] } } });
    // The term-3 leader has committed up to 4 in its log; its probe verifies only index 2.
    stepAndCollect(c, { type: App, from: 2, to: 1, term: 3, index: 2, logTerm: 2, commit: 4 });
    expect(c.commit(1)).toBe(2);
    expect(c.peer(1).appliedEntries.map((e) => e.index)).toEqual([2]);
    // The next append replaces the tail and carries the commit up to what it verified.
    stepAndCollect(c, {
      type: App,
      from: 2,
      to: 1,
      term: 3,
      index: 2,
      logTerm: 2,
      commit: 4,
      entries: [ent(3, 3)],
    });
    expect(c.logTerms(1)).toEqual([1, 2, 3]);
    expect(c.commit(1)).toBe(3);
    expect(c.peer(1).appliedEntries.map((e) => [e.index, e.term])).toEqual([
      [2, 2],
      [3, 3],
    ]);
  });

  // Figure 7 of the paper: the leader of term 8 (log on top) and followers (a)-(f). Index 1 is the
  // bootstrap snapshot, so each array lists the terms at indexes 2, 3, ...
  const leaderLog = [1, 1, 4, 4, 5, 5, 6, 6, 6];
  test.each([
    { name: "a", terms: [1, 1, 4, 4, 5, 5, 6, 6] },
    { name: "b", terms: [1, 1, 4] },
    { name: "c", terms: [1, 1, 4, 4, 5, 5, 6, 6, 6, 6] },
    { name: "d", terms: [1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7] },
    { name: "e", terms: [1, 1, 4, 4, 4, 4] },
    { name: "f", terms: [1, 1, 2, 2, 2, 3, 3, 3, 3, 3] },
  ])("figure 7 ($name): the leader brings the follower's log in line with its own", ({ terms }) => {
    const c = new Cluster([1, 2, 3], { setup: { 1: { terms: leaderLog, term: 8 }, 2: { terms } } });
    c.elect(1);
    expect(c.term(1)).toBe(9);
    expect(c.logTerms(2)).toEqual(c.logTerms(1));
    expect(c.logTerms(1)).toEqual([1, ...leaderLog, 9]);
    expect(c.commit(2)).toBe(c.commit(1));
    expect(c.peer(2).state).toEqual(c.peer(1).state);
    // Fast backtracking: at most two rejected probes, whatever the divergence.
    expect(
      c.delivered.filter((m) => m.type === AppResp && m.from === 2 && m.reject).length,
    ).toBeLessThanOrEqual(2);
  });

  test("fast backtracking: a long divergent log is brought in line in a few round trips, without ticks", () => {
    const common = Array<number>(10).fill(2);
    const c = new Cluster([1, 2, 3], {
      setup: {
        1: { terms: [...common, ...Array<number>(100).fill(4)] },
        2: { terms: [...common, ...Array<number>(150).fill(3)] },
        3: { terms: [...common, ...Array<number>(100).fill(4)] },
      },
    });
    c.elect(1);
    expect(c.logTerms(2)).toEqual(c.logTerms(1));
    const rejections = c.delivered.filter((m) => m.type === AppResp && m.from === 2 && m.reject);
    expect(rejections.length).toBeLessThanOrEqual(2);
  });

  test("a lagging follower (short log, same terms) is caught up with a single rejected probe", () => {
    const c = new Cluster([1, 2, 3], {
      setup: { 1: { terms: Array<number>(100).fill(2) }, 3: { terms: Array<number>(100).fill(2) } },
    });
    c.elect(1);
    expect(c.logTerms(2)).toEqual(c.logTerms(1));
    expect(
      c.delivered.filter((m) => m.type === AppResp && m.from === 2 && m.reject).length,
    ).toBeLessThanOrEqual(1);
  });

  test("committed entries are applied exactly once, in order, however small the apply batches (#29)", () => {
    for (const maxApplyBytes of [1, 30, 100, 1 << 20]) {
      const c = new Cluster([1, 2, 3], { options: { maxApplyBytes } });
      c.elect(1);
      const want: string[] = [];
      for (let i = 0; i < 20; i++) {
        want.push(`v${i}`);
        okProposal(c, 1, `v${i}`);
      }
      c.stabilize();
      for (const id of [1, 2, 3]) {
        const p = c.peer(id);
        expect(p.state).toEqual(want);
        // The harness checks contiguity as it applies; check the total too.
        expect(p.appliedEntries.map((e) => e.index)).toEqual(Array.from({ length: 21 }, (_, i) => i + 2));
        expect(p.appliedIndex).toBe(c.commit(id));
      }
    }
  });
});

describe("§5.4.1 election restriction", () => {
  // The voter's log ends with (index 3, term 2).
  test.each([
    { logTerm: 1, index: 9, grant: false },
    { logTerm: 2, index: 2, grant: false },
    { logTerm: 2, index: 3, grant: true },
    { logTerm: 2, index: 4, grant: true },
    { logTerm: 3, index: 2, grant: true },
  ])(
    "a candidate whose log ends at (index $index, term $logTerm) gets the vote: $grant",
    ({ logTerm, index, grant }) => {
      for (const type of [PreVote, Vote]) {
        const c = new Cluster([1, 2, 3], { setup: { 1: { terms: [2, 2] } } });
        const out = stepAndCollect(c, { type, from: 2, to: 1, term: 3, index, logTerm });
        expect(out).toEqual([expect.objectContaining({ to: 2, reject: !grant })]);
      }
    },
  );
});

describe("§5.4.2 committing entries from previous terms (figure 8, #1)", () => {
  /**
   * Figure 8, state (c): S1 has index 2 from term 2 and is elected in term 4; S5 holds a term-3
   * entry at index 2. Appends carry one entry each, and leases are off so S5 may campaign later.
   */
  function figure8(): Cluster {
    const c = new Cluster([1, 2, 3, 4, 5], {
      options: { checkQuorum: false, maxMsgBytes: 1 },
      setup: { 1: { terms: [2], term: 3 }, 2: { terms: [2] }, 5: { terms: [3] } },
    });
    c.campaign(1);
    c.stabilize(isElection);
    expect(c.role(1)).toBe("leader");
    expect(c.term(1)).toBe(4);
    expect(c.logTerms(1)).toEqual([1, 2, 4]);
    // S2 gets everything (index 3 of term 4 included).
    c.stabilize((m) => (m.from === 1 && m.to === 2) || (m.from === 2 && m.to === 1));
    expect(c.logTerms(2)).toEqual([1, 2, 4]);
    // S3 gets index 2 but not index 3 (S1 fails before sending it): S3 sees the appends it rejects
    // (their prev is beyond its log) and those carrying index 2 only.
    const s3 = (m: Message): boolean =>
      (m.from === 3 && m.to === 1) ||
      (m.from === 1 &&
        m.to === 3 &&
        (m.index > c.node(3).status().lastIndex || m.entries.every((e) => e.index <= 2)));
    c.stabilize(s3);
    expect(c.logTerms(3)).toEqual([1, 2]);
    return c;
  }

  const everApplied = (c: Cluster, index: number, term: number): NodeId[] =>
    c.ids().filter((id) => c.peer(id).appliedEntries.some((e) => e.index === index && e.term === term));

  test("an old-term entry stored on a majority is not committed, and a later leader may overwrite it", () => {
    const c = figure8();
    // Index 2 (term 2) is on S1, S2 and S3: a majority, but not of S1's term.
    for (const id of c.ids()) expect(c.commit(id)).toBe(1);

    // (d) S1 crashes; S5 (last entry of term 3) can win votes from S3 and S4.
    c.isolate(1);
    c.take();
    c.campaign(5);
    c.stabilize();
    expect(c.role(5)).toBe("leader");
    expect(c.term(5)).toBe(5);
    for (const id of [2, 3, 4, 5]) expect(c.logTerms(id)).toEqual([1, 3, 5]);
    expect(everApplied(c, 2, 2)).toEqual([]);

    // S1 comes back and is overwritten too.
    c.heal();
    c.run(2 * ELECTION_TICKS);
    expect(c.logTerms(1)).toEqual(c.logTerms(5));
    expect(everApplied(c, 2, 2)).toEqual([]);
    expect(everApplied(c, 2, 3).sort()).toEqual([1, 2, 3, 4, 5]);
  });

  test("once an entry of the leader's term is on a majority, it and all before it are committed", () => {
    const c = figure8();
    // (e) S1 also gets index 3 (term 4) to S3 before crashing.
    c.stabilize((m) => (m.from === 1 && m.to === 3) || (m.from === 3 && m.to === 1));
    expect(c.logTerms(3)).toEqual([1, 2, 4]);
    expect(c.commit(1)).toBe(3);
    expect(everApplied(c, 2, 2)).toContain(1);

    // S5 can no longer be elected: S1, S2 and S3 all have a more up-to-date log.
    c.isolate(1);
    c.take();
    for (let i = 0; i < 3; i++) {
      c.campaign(5);
      c.stabilize();
    }
    expect(c.role(5)).not.toBe("leader");
    expect(c.term(5)).toBe(4);
    c.elect(2);
    c.stabilize();
    for (const id of [2, 3, 4, 5]) expect(c.logTerms(id).slice(0, 3)).toEqual([1, 2, 4]);
  });
});

function okProposal(c: Cluster, id: NodeId, data: string): { index: number; term: number } {
  const r = c.propose(id, data);
  if (!r.ok) throw new Error(`proposal at ${id} failed: ${r.code}`);
  return r;
}
