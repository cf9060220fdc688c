// End-to-end scenarios on the in-memory network that read best as code (the ones that read better
// as text are testdata/*.txt, run by scripts.test.ts): elections, partitions, snapshots,
// membership changes, leader transfer and reads. "#n" refers to /work/shared/RAFT-PITFALLS.md.
// Besides each test's own assertions, the harness checks on every Ready that there is at most one
// leader per term and that all nodes apply the same entry at each index.

import { describe, expect, test } from "vitest";
import type { ConfChangeType as CCType, Message, NodeId, ProposeResult } from "../src/index.js";
import { ConfChangeType, decodeConfChange, EntryType, message, MessageType } from "../src/index.js";
import { Cluster, ELECTION_TICKS as E, seededRand } from "./harness.js";

const { AddLearner, AddVoter, PromoteLearner, Remove } = ConfChangeType;

const isElection = (m: Message): boolean =>
  m.type === MessageType.PreVote ||
  m.type === MessageType.PreVoteResp ||
  m.type === MessageType.Vote ||
  m.type === MessageType.VoteResp;

function ok(r: ProposeResult): { index: number; term: number } {
  if (!r.ok) throw new Error(`proposal rejected: ${r.code}`);
  return r;
}

function confChange(c: Cluster, at: NodeId, type: CCType, nodeId: NodeId): ProposeResult {
  return c.node(at).proposeConfChange({ type, nodeId });
}

/** Every node's log (where none is compacted), commit index and applied state are the same. */
function expectConverged(c: Cluster, ids: readonly NodeId[] = c.ids()): void {
  const [first, ...rest] = ids;
  if (first === undefined) return;
  const last = c.node(first).status().lastIndex;
  const from = Math.max(...ids.map((id) => c.peer(id).storage.firstIndex()));
  const terms = (id: NodeId): (number | undefined)[] =>
    Array.from({ length: last - from + 1 }, (_, i) => c.node(id).term(from + i));
  for (const id of rest) {
    expect(c.node(id).status().lastIndex, `last index of ${id}`).toBe(last);
    expect(terms(id), `log of ${id}`).toEqual(terms(first));
    expect(c.commit(id), `commit of ${id}`).toBe(c.commit(first));
    expect(c.peer(id).state, `state of ${id}`).toEqual(c.peer(first).state);
  }
}

describe("elections", () => {
  test.each([3, 5])("%i nodes elect exactly one leader that everyone follows", (n) => {
    const ids = Array.from({ length: n }, (_, i) => i + 1);
    const c = new Cluster(ids, { seed: n });
    c.run(3 * E);
    expect(c.leaders()).toHaveLength(1);
    const leader = c.leader();
    for (const id of ids) {
      expect(c.lead(id)).toBe(leader);
      expect(c.term(id)).toBe(c.term(leader));
    }
    ok(c.propose(leader, "x"));
    c.stabilize();
    for (const id of ids) expect(c.peer(id).state).toEqual(["x"]);
  });

  test("5 nodes with 2 down still elect a leader; with 3 down none, and no term is wasted", () => {
    const c = new Cluster([1, 2, 3, 4, 5]);
    c.isolate(4);
    c.isolate(5);
    c.run(5 * E);
    expect([1, 2, 3]).toContain(c.leader());

    const d = new Cluster([1, 2, 3, 4, 5]);
    d.isolate(3);
    d.isolate(4);
    d.isolate(5);
    d.run(10 * E);
    expect(d.leaders()).toEqual([]);
    // Pre-vote: failed elections never bumped anyone's term.
    for (const id of d.ids()) expect(d.term(id)).toBe(1);
  });
});

describe("partitions", () => {
  test("a node at a higher term with a shorter log does not strand the cluster (#20)", () => {
    // Node 3 runs without pre-vote, so while cut off it inflates its term.
    const c = new Cluster([1, 2, 3], { setup: { 3: { options: { preVote: false } } } });
    c.elect(1);
    c.isolate(3);
    c.run(10 * E);
    expect(c.term(3)).toBeGreaterThan(c.term(1) + 3);
    for (let i = 0; i < 5; i++) ok(c.propose(1, `v${i}`));
    c.stabilize();

    // Back: the others must converge on node 3's term (or beyond) under a leader with the full log.
    c.heal();
    c.run(10 * E);
    const leader = c.leader();
    expect(leader).not.toBe(3); // Its log is behind: it cannot win.
    expect(c.term(leader)).toBeGreaterThanOrEqual(c.term(3));
    expect(c.lead(3)).toBe(leader);
    ok(c.propose(leader, "after"));
    c.stabilize();
    expectConverged(c);
    expect(c.peer(3).state).toEqual(["v0", "v1", "v2", "v3", "v4", "after"]);
  });

  test("chained partition: a node that reaches only a follower cannot depose the leader (leader lease)", () => {
    // 1 - 2 - 3: the leader 1 and node 3 cannot talk. Logs are equal, so only the lease makes
    // node 2 refuse node 3's pre-vote; without it, 3 and 1 would depose each other in turn.
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    const term = c.term(1);
    c.partition(1, 3);
    for (let t = 0; t < 20 * E; t++) {
      c.run(1);
      expect(c.leaders()).toEqual([1]);
    }
    expect(c.term(1)).toBe(term);
    expect(c.term(2)).toBe(term);
  });

  test("partial partition: 5 nodes, 4 sees only 2, 5 sees only 3: a stable leader exists (#22)", () => {
    const c = new Cluster([1, 2, 3, 4, 5]);
    c.elect(4); // The worst start: the leader is about to become poorly connected.
    for (const [a, b] of [
      [4, 1],
      [4, 3],
      [4, 5],
      [5, 1],
      [5, 2],
    ] as const) {
      c.partition(a, b);
    }
    c.run(10 * E);
    const leader = c.leader();
    const term = c.term(leader);
    expect([1, 2, 3]).toContain(leader);
    for (let t = 0; t < 10 * E; t++) {
      c.run(1);
      expect(c.leaders()).toEqual([leader]);
      expect(c.term(leader)).toBe(term);
    }
    // And it makes progress.
    ok(c.propose(leader, "x"));
    c.stabilize();
    for (const id of [1, 2, 3]) expect(c.peer(id).state).toEqual(["x"]);
  });

  test("check-quorum does not count learners: a leader that only hears learners steps down (#23)", () => {
    const c = new Cluster([1, 2, 3], { learners: [4, 5] });
    c.elect(1);
    // Node 1 hears only the learners, which hear nobody else: only check-quorum can depose it.
    for (const [a, b] of [
      [1, 2],
      [1, 3],
      [2, 4],
      [2, 5],
      [3, 4],
      [3, 5],
    ] as const) {
      c.partition(a, b);
    }
    c.run(2 * E);
    expect(c.role(1)).toBe("follower");
    c.run(3 * E);
    expect([2, 3]).toContain(c.leader());
  });

  test("check-quorum: a leader that hears its voters but no learners stays (#23)", () => {
    const c = new Cluster([1, 2, 3], { learners: [4, 5] });
    c.elect(1);
    const term = c.term(1);
    c.isolate(4);
    c.isolate(5);
    c.run(5 * E);
    expect(c.leaders()).toEqual([1]);
    expect(c.term(1)).toBe(term);
  });

  test("replication recovers after long random message loss (#27)", () => {
    for (const seed of [1, 2, 3]) {
      const c = new Cluster([1, 2, 3, 4, 5], { seed });
      const rng = seededRand(seed + 100);
      c.dropIf = () => rng.float() < 0.3;
      let n = 0;
      for (let t = 0; t < 30 * E; t++) {
        c.run(1);
        for (const id of c.leaders()) c.propose(id, `p${n++}`);
      }
      c.dropIf = undefined;
      c.run(5 * E);
      expect(c.leaders()).toHaveLength(1);
      const leader = c.leader();
      ok(c.propose(leader, "final"));
      c.stabilize();
      expectConverged(c);
      expect(c.peer(leader).state.at(-1)).toBe("final");
      expect(c.commit(leader)).toBe(c.node(leader).status().lastIndex);
      for (const [id, pr] of c.node(leader).status().progress) {
        expect(pr.state, `progress of ${id}`).toBe("replicate");
      }
    }
  });
});

describe("flow control (#27)", () => {
  test.each([
    { name: "count", options: { maxInflightMsgs: 2 } },
    { name: "bytes", options: { maxInflightBytes: 60 } },
  ])("a follower whose in-flight window ($name) filled with lost appends recovers", ({ options }) => {
    const c = new Cluster([1, 2, 3], { options });
    c.elect(1);
    c.drop(1, 2);
    for (let i = 0; i < 6; i++) {
      ok(c.propose(1, `v${i}`)); // One append per proposal: the window to node 2 fills up.
      c.stabilize();
    }
    c.heal();
    c.run(3);
    expectConverged(c);
    expect(c.peer(2).state).toEqual(["v0", "v1", "v2", "v3", "v4", "v5"]);
    expect(c.node(1).status().progress.get(2)?.state).toBe("replicate");
  });

  test("the uncommitted-bytes limit refuses proposals, and is released by commit and by a change of leader", () => {
    const c = new Cluster([1, 2, 3], { options: { maxUncommittedBytes: 10 } });
    c.elect(1);
    c.partition(1, 2);
    c.partition(1, 3);
    ok(c.propose(1, "12345678"));
    expect(c.propose(1, "12345678")).toMatchObject({ ok: false, code: "too-many-uncommitted" });
    c.heal();
    c.run(2);
    expect(c.peer(2).state).toEqual(["12345678"]);
    ok(c.propose(1, "12345678"));
    c.stabilize();
    // A deposed leader's uncommitted bytes do not follow it into its next term as leader.
    c.isolate(1);
    ok(c.propose(1, "lost....")); // Uncommitted, and will be overwritten.
    c.run(4 * E);
    c.heal();
    c.run(2 * E);
    c.node(c.leader()).transferLeader(1);
    c.stabilize();
    expect(c.leader()).toBe(1);
    ok(c.propose(1, "12345678"));
  });

  test("a leader told that a snapshot failed sends it again; told it succeeded, resumes appends", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.isolate(3);
    for (let i = 0; i < 3; i++) ok(c.propose(1, `v${i}`));
    c.stabilize();
    c.compact(1);
    c.heal();
    c.dropIf = (m) => m.type === MessageType.Snap;
    c.run(1);
    expect(c.node(1).status().progress.get(3)?.state).toBe("snapshot");
    c.node(1).reportSnapshot(3, false);
    expect(c.node(1).status().progress.get(3)?.state).toBe("probe");
    c.dropIf = undefined;
    c.run(2);
    expect(c.delivered.filter((m) => m.type === MessageType.Snap)).toHaveLength(1);
    c.node(1).reportSnapshot(3, true);
    ok(c.propose(1, "after"));
    c.stabilize();
    expectConverged(c);
    expect(c.peer(3).state).toEqual(["v0", "v1", "v2", "after"]);
  });
});

describe("snapshots", () => {
  /** Node 3 misses 10 entries, then the leader compacts them away. */
  function lagBehindCompaction(): Cluster {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.isolate(3);
    for (let i = 0; i < 10; i++) ok(c.propose(1, `v${i}`));
    c.stabilize();
    const snap = c.compact(1);
    expect(c.peer(1).storage.firstIndex()).toBe(snap.meta.index + 1);
    expect(c.node(3).status().lastIndex).toBeLessThan(snap.meta.index);
    return c;
  }

  test("a follower behind the leader's compacted log catches up by snapshot (#15)", () => {
    const c = lagBehindCompaction();
    const snapIndex = c.peer(1).storage.snapshot().meta.index;
    c.heal();
    c.run(2);
    expect(c.delivered.filter((m) => m.type === MessageType.Snap && m.to === 3)).toHaveLength(1);
    // Never an append whose previous entry's term was unknown (compacted) and sent as 0.
    expect(c.delivered.filter((m) => m.type === MessageType.App && m.index > 0 && m.logTerm === 0)).toEqual(
      [],
    );
    expect(c.peer(3).storage.snapshot().meta.index).toBe(snapIndex);
    expectConverged(c);
  });

  test("after a snapshot is installed, replication resumes without waiting for a timeout (#28)", () => {
    const c = lagBehindCompaction();
    c.heal();
    c.run(2);
    expect(c.node(1).status().progress.get(3)?.state).toBe("replicate");
    ok(c.propose(1, "after"));
    c.stabilize(); // No ticks.
    expect(c.peer(3).state.at(-1)).toBe("after");
    expect(c.commit(3)).toBe(c.commit(1));
  });

  test("a lost snapshot is sent again", () => {
    const c = lagBehindCompaction();
    let dropped = 0;
    c.dropIf = (m) => m.type === MessageType.Snap && dropped++ === 0;
    c.heal();
    c.run(4 * E);
    expect(dropped).toBeGreaterThanOrEqual(2);
    expectConverged(c);
  });

  test("a snapshot carries the configuration as of its index and replaces conflicting entries (#7)", () => {
    // Node 3 holds three uncommitted entries of a deposed term-2 leader.
    const c = new Cluster([1, 2, 3], {
      setup: { 1: { terms: [3], term: 3 }, 2: { terms: [3], term: 3 }, 3: { terms: [2, 2, 2] } },
    });
    c.isolate(3);
    c.elect(1);
    c.add(4);
    ok(confChange(c, 1, AddLearner, 4));
    c.stabilize();
    for (let i = 0; i < 5; i++) ok(c.propose(1, `v${i}`));
    c.stabilize();
    c.compact(1);
    expect(c.logTerms(3)).toEqual([1, 2, 2, 2]);

    c.heal();
    c.run(2);
    expect(c.node(3).confState()).toEqual({ voters: [1, 2, 3], learners: [4] });
    expect(c.peer(3).storage.snapshot().meta.confState).toEqual({ voters: [1, 2, 3], learners: [4] });
    expect(c.logTerms(3)).not.toContain(2);
    expectConverged(c);
  });
});

describe("membership changes", () => {
  test("PromoteLearner cannot bring back a member removed meanwhile", () => {
    const c = new Cluster([1, 2, 3], { learners: [4] });
    c.elect(1);
    ok(confChange(c, 1, Remove, 4));
    c.stabilize();
    // An operator acting on a stale view promotes 4 after all: refused, and a no-op if applied.
    expect(confChange(c, 1, PromoteLearner, 4)).toMatchObject({ ok: false, code: "invalid-conf-change" });
    expect(c.node(1).confState()).toEqual({ voters: [1, 2, 3], learners: [] });
    // AddVoter of the same id would re-add it: that is why promotion has its own type.
    expect(confChange(c, 1, AddVoter, 4)).toMatchObject({ ok: true });
  });

  test("a promoted learner votes even before it applied its own promotion (#24)", () => {
    const c = new Cluster([1, 2], { learners: [3] });
    c.elect(1);
    c.drop(1, 3); // Node 3 will not hear of its promotion for now.
    ok(confChange(c, 1, AddVoter, 3));
    c.stabilize();
    expect(c.node(1).confState().voters).toEqual([1, 2, 3]);
    expect(c.node(3).confState().learners).toEqual([3]);

    // Node 1 fails. Node 2 needs node 3's vote: 2 of {1, 2, 3}.
    c.isolate(1);
    c.tick(3, E); // Node 3's leader lease on node 1 runs out.
    c.campaign(2);
    c.stabilize();
    expect(c.role(2)).toBe("leader");
    expect(c.node(3).confState()).toEqual({ voters: [1, 2, 3], learners: [] });
  });

  test("a promoted learner campaigns and can lead (#24)", () => {
    const c = new Cluster([1, 2], { learners: [3] });
    c.elect(1);
    ok(confChange(c, 1, AddVoter, 3));
    c.stabilize();
    expect(c.node(3).confState().voters).toEqual([1, 2, 3]);
    c.isolate(1);
    c.tick(3, 2 * E - 1);
    expect(c.role(3)).toBe("pre-candidate");
    c.heal();
    c.run(1);
    c.node(c.leader()).transferLeader(3);
    c.stabilize();
    expect(c.leader()).toBe(3);
  });

  test("remove a follower: it stops counting toward the quorum", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    ok(confChange(c, 1, Remove, 3));
    c.stabilize();
    for (const id of [1, 2, 3]) expect(c.node(id).confState()).toEqual({ voters: [1, 2], learners: [] });
    c.isolate(3);
    const { index } = ok(c.propose(1, "x"));
    c.stabilize();
    expect(c.commit(1)).toBe(index);
    // The removed node no longer campaigns.
    c.tick(3, 5 * E);
    expect(c.role(3)).toBe("follower");
  });

  // The removed leader keeps replicating and hands over with a leader transfer (retried every
  // election timeout), so a voter that has not yet learned of the removal is not stranded.
  test("removing the leader: it stops leading and hands over to a remaining voter (#25)", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    ok(confChange(c, 1, Remove, 1));
    c.stabilize();
    expect(c.node(1).confState().voters).toEqual([2, 3]);
    expect(c.propose(1, "x")).toMatchObject({ ok: false });
    const removedAt = c.delivered.length;
    c.run(2 * E);
    const leader = c.leader();
    expect([2, 3]).toContain(leader);
    expect(c.role(1)).toBe("follower");
    c.run(5 * E);
    expect(c.leader()).toBe(leader);
    expect(c.role(1)).toBe("follower");
    // Node 1 never campaigned: it is not a voter any more.
    expect(c.delivered.slice(removedAt).filter((m) => m.from === 1 && isElection(m))).toEqual([]);
    ok(c.propose(leader, "y"));
    c.stabilize();
    expect(c.peer(2).state).toEqual(["y"]);
    expect(c.peer(3).state).toEqual(["y"]);
  });

  test("a shrinking quorum commits what the leader already holds", () => {
    const c = new Cluster([1, 2, 3, 4]);
    c.elect(1);
    ok(confChange(c, 1, Remove, 4));
    c.ready(1);
    c.deliver();
    c.readyAll();
    const ccAcks = c.take(); // Everyone has the removal; their acks are held back for now.
    const { index } = ok(c.propose(1, "x"));
    c.ready(1);
    c.take((m) => m.to !== 2); // Only node 2 gets x, and acks it.
    c.drop(1, 3);
    c.drop(1, 4);
    c.stabilize();
    expect(c.commit(1)).toBeLessThan(index); // On 2 of {1, 2, 3, 4}: not committed.
    // The removal commits and applies: x is now on 2 of {1, 2, 3}, a quorum.
    c.send(...ccAcks);
    c.stabilize();
    expect(c.node(1).confState().voters).toEqual([1, 2, 3]);
    expect(c.commit(1)).toBe(index);
    expect(c.peer(1).state).toEqual(["x"]);
  });

  test("only one conf change may be pending at a time", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    ok(confChange(c, 1, AddLearner, 4));
    expect(confChange(c, 1, AddLearner, 5)).toMatchObject({ ok: false, code: "conf-change-pending" });
    ok(c.propose(1, "normal proposals still go through"));
    c.stabilize();
    ok(confChange(c, 1, AddLearner, 5));
    c.stabilize();
    expect(c.node(1).confState()).toEqual({ voters: [1, 2, 3], learners: [4, 5] });
  });

  test("invalid conf changes are refused at proposal time", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    expect(confChange(c, 1, AddVoter, 2)).toMatchObject({ ok: false, code: "invalid-conf-change" });
    expect(confChange(c, 1, Remove, 9)).toMatchObject({ ok: false, code: "invalid-conf-change" });
    const single = new Cluster([1]);
    single.elect(1);
    expect(confChange(single, 1, Remove, 1)).toMatchObject({ ok: false, code: "invalid-conf-change" });
    // Two voters: a removal is refused (add a voter first).
    const pair = new Cluster([1, 2]);
    pair.elect(1);
    expect(confChange(pair, 1, Remove, 2)).toMatchObject({ ok: false, code: "invalid-conf-change" });
    expect(confChange(pair, 1, Remove, 1)).toMatchObject({ ok: false, code: "invalid-conf-change" });
  });

  test("a new leader cannot propose a conf change before it commits an entry of its term (#4)", () => {
    const c = new Cluster([1, 2, 3]);
    c.campaign(1);
    c.stabilize(isElection);
    expect(c.role(1)).toBe("leader");
    expect(confChange(c, 1, AddLearner, 4)).toMatchObject({ ok: false, code: "conf-change-pending" });
    c.stabilize();
    ok(confChange(c, 1, AddLearner, 4));
  });

  test("a node does not campaign while it has committed but unapplied conf changes (#5)", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    const { index } = ok(confChange(c, 1, AddLearner, 4));
    // Run everything except node 2's Readys: it learns the commit but applies nothing.
    for (let i = 0; i < 10; i++) {
      for (const id of [1, 3]) c.ready(id);
      c.deliver();
    }
    expect(c.node(2).status().hardState.commit).toBeGreaterThanOrEqual(index);
    expect(c.node(2).status().applied).toBeLessThan(index);
    c.campaign(2);
    expect(c.role(2)).toBe("follower");
    // Once applied, it may.
    c.ready(2);
    expect(c.node(2).confState().learners).toEqual([4]);
    c.campaign(2);
    expect(c.role(2)).toBe("pre-candidate");
  });

  test("a new leader treats a conf change in its log as pending, and applies it once committed (#6)", () => {
    const c = new Cluster([1, 2, 3], { options: { checkQuorum: false } });
    c.elect(1);
    ok(confChange(c, 1, AddLearner, 4));
    // The entry reaches node 2 only, then node 1 fails.
    c.ready(1);
    c.deliver((m) => m.to === 2);
    c.ready(2);
    c.isolate(1);
    c.take();
    c.campaign(2);
    c.stabilize(isElection);
    expect(c.role(2)).toBe("leader");
    expect(c.node(2).confState().learners).toEqual([]);
    expect(confChange(c, 2, AddLearner, 5)).toMatchObject({ ok: false, code: "conf-change-pending" });
    c.stabilize();
    expect(c.node(2).confState().learners).toEqual([4]);
    ok(confChange(c, 2, AddLearner, 5));
  });

  test("an uncommitted conf change that gets overwritten never takes effect (#6)", () => {
    const c = new Cluster([1, 2, 3], { options: { checkQuorum: false } });
    c.elect(1);
    c.isolate(1);
    const { index } = ok(confChange(c, 1, AddLearner, 4));
    c.stabilize();
    c.elect(2);
    ok(c.propose(2, "x"));
    c.heal();
    c.run(E);
    expect(c.role(1)).toBe("follower");
    expect(c.node(1).entries(index, index + 1)[0]?.type).toBe(EntryType.Normal);
    expect(c.node(1).confState()).toEqual({ voters: [1, 2, 3], learners: [] });
    const applied = c.peer(1).appliedEntries.filter((e) => e.type === EntryType.ConfChange);
    expect(applied.map((e) => decodeConfChange(e.data))).toEqual([]);
    expectConverged(c);
  });
});

describe("leader transfer (#26)", () => {
  test("to a lagging follower: proposals pause, the target catches up, then takes over", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.drop(1, 3);
    for (let i = 0; i < 5; i++) ok(c.propose(1, `v${i}`));
    c.stabilize();
    c.heal();
    const last = c.node(1).status().lastIndex;
    expect(c.node(1).status().progress.get(3)?.match).toBeLessThan(last);
    c.node(1).transferLeader(3);
    expect(c.propose(1, "during")).toMatchObject({ ok: false, code: "transferring" });
    c.stabilize();
    expect(c.leader()).toBe(3);
    expect(c.peer(3).state).toEqual(["v0", "v1", "v2", "v3", "v4"]);
    // TimeoutNow only went out once node 3 had acknowledged the whole log.
    const timeoutAt = c.delivered.findIndex((m) => m.type === MessageType.TimeoutNow);
    const caughtUp = c.delivered.findIndex(
      (m) => m.type === MessageType.AppResp && m.from === 3 && !m.reject && m.index >= last,
    );
    expect(caughtUp).toBeGreaterThanOrEqual(0);
    expect(timeoutAt).toBeGreaterThan(caughtUp);
  });

  test("a dropped TimeoutNow does not wedge the leader: the transfer is aborted after an election timeout", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    const term = c.term(1);
    c.dropIf = (m) => m.type === MessageType.TimeoutNow;
    c.node(1).transferLeader(2);
    c.stabilize();
    expect(c.node(1).status().leadTransferee).toBe(2);
    expect(c.propose(1, "x")).toMatchObject({ ok: false, code: "transferring" });
    c.run(E);
    expect(c.node(1).status().leadTransferee).toBe(0);
    expect(c.leader()).toBe(1);
    expect(c.term(1)).toBe(term);
    ok(c.propose(1, "y"));
    c.stabilize();
    expect(c.peer(2).state).toEqual(["y"]);
  });

  test("a transfer to a learner, a non-member or the leader itself is ignored", () => {
    const c = new Cluster([1, 2, 3], { learners: [4] });
    c.elect(1);
    for (const target of [4, 9, 1]) {
      c.node(1).transferLeader(target);
      expect(c.node(1).status().leadTransferee).toBe(0);
      ok(c.propose(1, `after ${target}`));
    }
    c.stabilize();
    expect(c.leader()).toBe(1);
    expect(c.delivered.filter((m) => m.type === MessageType.TimeoutNow)).toEqual([]);
  });

  test("a transfer is aborted when its target is removed", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    c.drop(1, 3); // Node 3 cannot catch up, so the transfer is still waiting when the removal applies.
    ok(confChange(c, 1, Remove, 3));
    c.node(1).transferLeader(3);
    expect(c.node(1).status().leadTransferee).toBe(3);
    c.stabilize();
    expect(c.node(1).confState().voters).toEqual([1, 2]);
    expect(c.node(1).status().leadTransferee).toBe(0);
    expect(c.leader()).toBe(1);
    ok(c.propose(1, "x"));
  });
});

describe("ReadIndex", () => {
  test("on the leader: served after a heartbeat round, at an index covering every prior write", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    const { index } = ok(c.propose(1, "x"));
    c.stabilize();
    expect(c.node(1).readIndex(42)).toBe(true);
    c.ready(1);
    expect(c.peer(1).readStates).toEqual([]); // Not before a quorum confirmed leadership.
    c.stabilize();
    expect(c.peer(1).readStates).toEqual([{ index: c.commit(1), requestId: 42 }]);
    expect(c.peer(1).readStates[0]?.index).toBeGreaterThanOrEqual(index);
  });

  test("a new leader defers reads until it has committed an entry of its term (#16)", () => {
    // Index 2 (term 2) may have been committed by the previous leader: node 1 cannot know yet.
    const c = new Cluster([1, 2, 3], { setup: { 1: { terms: [2] }, 2: { terms: [2] }, 3: { terms: [2] } } });
    c.campaign(1);
    c.stabilize(isElection);
    expect(c.role(1)).toBe("leader");
    expect(c.commit(1)).toBe(1);
    expect(c.node(1).readIndex(5)).toBe(true);
    c.readyAll();
    expect(c.peer(1).readStates).toEqual([]);
    expect(c.queue.filter((m) => m.type === MessageType.Heartbeat && m.context > 0)).toEqual([]);
    c.stabilize();
    expect(c.peer(1).readStates).toEqual([{ index: 3, requestId: 5 }]);
  });

  test("read confirmations are matched by leader rounds, not by the caller's request id (#17)", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    const term = c.term(1);
    c.node(1).readIndex(100);
    c.ready(1);
    const round1 = c.take((m) => m.type === MessageType.Heartbeat);
    expect(round1).toHaveLength(2);
    // Acks carrying the request id as if it were a round confirm nothing.
    for (const from of [2, 3]) {
      c.node(1).step(message({ type: MessageType.HeartbeatResp, from, to: 1, term, context: 100 }));
    }
    c.ready(1);
    expect(c.peer(1).readStates).toEqual([]);

    // A second read with the same request id gets its own round.
    c.node(1).readIndex(100);
    c.ready(1);
    const round2 = c.take((m) => m.type === MessageType.Heartbeat);
    c.take();
    // Acks of round 1 release the first read only.
    c.send(...round1);
    c.stabilize((m) => m.type !== MessageType.App);
    expect(c.peer(1).readStates).toHaveLength(1);
    c.send(...round2);
    c.stabilize();
    expect(c.peer(1).readStates).toEqual([
      { index: c.commit(1), requestId: 100 },
      { index: c.commit(1), requestId: 100 },
    ]);
  });

  test("a leader deposed by a transfer it did not hear complete serves no stale read (#18)", () => {
    const c = new Cluster([1, 2, 3]);
    c.elect(1);
    ok(c.propose(1, "x"));
    c.stabilize();
    c.node(1).transferLeader(2);
    c.drop(2, 1);
    c.drop(3, 1);
    c.stabilize();
    // Node 2 took over in term 3; node 1 has heard nothing and still thinks it leads term 2.
    expect(c.role(2)).toBe("leader");
    expect(c.role(1)).toBe("leader");
    ok(c.propose(2, "y"));
    c.stabilize();
    c.heal();
    c.node(1).readIndex(9);
    c.stabilize();
    expect(c.peer(1).readStates).toEqual([]);
    expect(c.role(1)).toBe("follower");
    expect(c.term(1)).toBe(c.term(2));
  });
});

describe("randomized faults", () => {
  // Partitions, message loss, restarts, compactions, transfers, membership changes and reads, at
  // random, with various options. The harness checks safety on every Ready; afterwards the network
  // heals and the cluster must converge, and no read may be served at an index below a commit index
  // known anywhere when it was issued (linearizability).
  test.each([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])("seed %i", (seed) => {
    const rng = seededRand(seed * 7919);
    const c = new Cluster([1, 2, 3, 4, 5], {
      seed,
      options: {
        maxInflightMsgs: 4,
        maxMsgBytes: 200,
        maxApplyBytes: seed % 4 === 1 ? 60 : 1 << 20,
        checkQuorum: seed % 4 !== 2,
        preVote: seed % 4 !== 3,
      },
    });
    const any = (): NodeId => 1 + rng.intn(5);
    let lossRate = 0;
    c.dropIf = () => rng.float() < lossRate;
    const readFloor = new Map<number, number>();
    let n = 0;
    for (let t = 0; t < 300; t++) {
      const r = rng.float();
      if (r < 0.05) {
        c.heal();
        lossRate = 0;
      } else if (r < 0.08) c.partition(any(), any());
      else if (r < 0.1) c.isolate(any());
      else if (r < 0.12) lossRate = rng.float() * 0.4;
      else if (r < 0.15) for (const id of c.leaders()) c.node(id).transferLeader(any());
      else if (r < 0.18) {
        for (const id of c.leaders()) {
          const type = [AddLearner, AddVoter, Remove][rng.intn(3)] ?? AddVoter;
          if (type !== Remove || c.node(id).confState().voters.length > 3) confChange(c, id, type, any());
        }
      } else if (r < 0.2) {
        const id = any();
        if (c.peer(id).appliedIndex > c.peer(id).storage.snapshot().meta.index) c.compact(id);
      } else if (r < 0.23) {
        readFloor.set(n, Math.max(...c.ids().map((id) => c.commit(id))));
        c.node(any()).readIndex(n++);
      } else if (r < 0.26) c.restart(any());
      for (const id of c.leaders()) c.propose(id, `p${n++}`);
      c.run(1);
    }

    c.heal();
    c.dropIf = undefined;
    c.run(20 * E);
    const members = c.node(c.leader()).confState();
    expect(c.leaders().filter((id) => members.voters.includes(id))).toEqual([c.leader()]);
    ok(c.propose(c.leader(), "final"));
    c.run(3);
    expectConverged(c, [...members.voters, ...members.learners]);
    expect(c.peer(c.leader()).state.at(-1)).toBe("final");
    for (const id of c.ids()) {
      for (const rs of c.peer(id).readStates)
        expect(rs.index).toBeGreaterThanOrEqual(readFloor.get(rs.requestId) ?? Infinity);
    }
  });
});
