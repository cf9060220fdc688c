// What clients and operators do to the cluster: proposals (some retried), linearizable reads,
// membership changes and leader transfers; every answer goes to the checkers.
import type { Answer, NodeId } from "@dispenser/raft";
import * as defaultRaft from "@dispenser/raft";
import { READ_TIMEOUT_MS, TICK } from "./events.js";
import { SimDisk } from "./disk.js";
import type { ClientRequest, SimNode } from "./node.js";
import { addNode } from "./node-host.js";
import type { Simulation } from "./simulation.js";

/** A client's proposal: its answer is checked against every other answer. */
export function propose(sim: Simulation, n: SimNode, req: ClientRequest): void {
  n.loop.propose(sim.app.encodeRequest(req.key, req.requestId, req.size), {
    resolve: (out) => {
      const g = out?.grant;
      if (!out || !g || g.requestId !== req.requestId || out.key !== req.key) {
        sim.checker.fail(
          "answer-is-own-entry",
          `node ${n.id} answered request ${req.requestId} (${req.key}) with ${JSON.stringify(out)}`,
        );
        return;
      }
      sim.checker.ack(out.key, g, req.ackedEndAtPropose);
      if (sim.livenessStart > 0 && sim.livenessDone === undefined && g.requestId >= sim.livenessFloor) {
        sim.livenessDone = Math.ceil((sim.now - sim.livenessStart) / TICK);
        sim.trace(`liveness: committed ${sim.livenessDone} ticks after healing`);
      }
    },
    reject: (err) => {
      const leader = (err as { leader?: NodeId }).leader;
      if (leader !== undefined && leader !== 0) sim.leaderHint = leader;
    },
  });
}

export function clientRequest(sim: Simulation): void {
  const ids = sim.liveIds();
  const target = sim.nodes.get(sim.leaderHint) && sim.rng.chance(0.8) ? sim.leaderHint : sim.rng.pick(ids);
  // Now and then a client retries an earlier request (its answer was lost, say): it must get the
  // same grant. The bound is the one taken when the request was first sent: anything
  // acknowledged before then must lie below the grant.
  const retry =
    sim.app.idempotent && sim.recentRequests.length > 0 && sim.rng.chance(0.1)
      ? sim.rng.pick(sim.recentRequests)
      : undefined;
  const key = retry?.key ?? sim.rng.pick(sim.app.keys);
  const request: ClientRequest = retry ?? {
    key,
    requestId: sim.nextRequestId++,
    size: sim.rng.range(1, 1000),
    ackedEndAtPropose: sim.checker.maxAckedEnd(key),
  };
  if (!retry) {
    sim.recentRequests.push(request);
    if (sim.recentRequests.length > 32) sim.recentRequests.shift();
  }
  // Client traffic travels outside the faulty Raft network.
  sim.schedule(sim.rng.range(1, 5), { kind: "client-arrive", node: target, request });
}

export function readRequest(sim: Simulation): void {
  const ids = sim.liveIds();
  const n = sim.nodes.get(sim.rng.pick(ids))!;
  const key = sim.rng.pick(sim.app.keys);
  if (!n.up) return;
  const ackedEndAtStart = sim.checker.maxAckedEnd(key);
  n.loop.readBarrier(READ_TIMEOUT_MS, {
    resolve: () => sim.checker.read(n.id, key, n.sm.markOf(key), ackedEndAtStart),
    reject: () => {},
  });
}

export function admin(sim: Simulation): void {
  const l = sim.leader();
  if (!l) return;
  const cs = l.loop.status().confState;
  const members = cs.voters.length + cs.learners.length;
  // A one-node cluster may grow to three voters; others shrink by two and grow by one.
  const minVoters = Math.max(1, sim.clusterSize - 2);
  const maxVoters = sim.clusterSize === 1 ? 3 : sim.clusterSize + 1;
  let change: "add-learner" | "promote" | "remove";
  let target: NodeId;
  const learner = cs.learners[0];
  if (learner !== undefined && sim.rng.chance(0.7)) {
    change = sim.rng.chance(0.85) ? "promote" : "remove";
    target = learner;
  } else if (cs.voters.length < maxVoters && members < maxVoters + 1 && sim.rng.chance(0.5)) {
    change = "add-learner";
    target = sim.nextNodeId;
  } else if (cs.voters.length > minVoters) {
    change = "remove";
    target = sim.rng.pick(cs.voters);
  } else return;
  changeMembership(sim, l, change, target);
  if (change === "add-learner") {
    // Start the new, empty server right away; it waits for the leader to contact it.
    sim.nextNodeId++;
    addNode(sim, target, new SimDisk());
  }
  sim.confChanges++;
}

/**
 * Propose a membership change at the leader `l`. Its answer must find the change in force on
 * `l`: checked when the answer would reach its caller (a promise's reaction runs once the loop
 * yields; here, at the next event).
 */
export function changeMembership(
  sim: Simulation,
  l: SimNode,
  change: "add-learner" | "promote" | "remove",
  target: NodeId,
): void {
  const type =
    change === "add-learner"
      ? defaultRaft.ConfChangeType.AddLearner
      : change === "promote"
        ? defaultRaft.ConfChangeType.PromoteLearner
        : defaultRaft.ConfChangeType.Remove;
  const inc = l.incarnation;
  const answer: Answer<void> = {
    resolve: () =>
      sim.schedule(0, {
        kind: "host",
        node: l.id,
        inc,
        k: () => {
          const cs = l.loop.status().confState;
          const inForce =
            change === "add-learner"
              ? cs.learners.includes(target) || cs.voters.includes(target)
              : change === "promote"
                ? cs.voters.includes(target)
                : !cs.voters.includes(target) && !cs.learners.includes(target);
          sim.checker.membershipAnswered(l.id, `${change} ${target}`, inForce);
        },
      }),
    reject: () => {},
  };
  sim.trace(`node ${l.id} proposes ${change} ${target}`);
  l.loop.proposeConfChange({ type, nodeId: target }, answer);
}

export function transfer(sim: Simulation): void {
  const l = sim.leader();
  if (!l) return;
  const voters = l.loop.status().confState.voters.filter((v) => v !== l.id);
  if (voters.length === 0) return;
  const to = sim.rng.pick(voters);
  sim.trace(`transfer leadership ${l.id} → ${to}`);
  l.loop.transferLeader(to);
}
