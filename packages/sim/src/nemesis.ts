// The faults of a run: its fault profile, crashes (the leader more often), partitions of every
// shape, and the end of the faults, after which the cluster must make progress.
import type { NodeId } from "@dispenser/raft";
import { TICK } from "./events.js";
import { CALM } from "./network.js";
import { crashNode, startNode } from "./node-host.js";
import type { Simulation } from "./simulation.js";

/** A fault profile drawn from the seed (drawn again now and then, so quiet and stormy periods alternate). */
export function drawProfile(sim: Simulation): Simulation["profile"] {
  const r = sim.rng;
  if (sim.churn) {
    // Leader churn: leaders die right after election or commit and come back fast, one entry
    // per message. This is where logs diverge the way the paper's figure 8 shows.
    return {
      crashEvery: 100000 * TICK,
      partitionEvery: 100000 * TICK,
      clientEvery: r.pick([1, 3]),
      killNewLeader: r.pick([0.5, 0.9]),
      isolateOnCommit: r.pick([0.1, 0.3]),
      killWithinTicks: 1,
      restartMaxTicks: 5,
      oneEntryPerMessage: true,
      faults: { dropRate: r.pick([0, 0.02]), dupRate: 0, delayMin: 1, delayMax: r.pick([3, 10]) },
    };
  }
  return {
    crashEvery: r.pick([40, 100, 250, 100000]) * TICK,
    partitionEvery: r.pick([30, 80, 200, 100000]) * TICK,
    clientEvery: r.pick([1, 3, 10]),
    killNewLeader: r.pick([0, 0, 0.3, 0.7]),
    isolateOnCommit: r.pick([0, 0, 0.02, 0.1]),
    killWithinTicks: 3,
    restartMaxTicks: 30,
    oneEntryPerMessage: false,
    faults: {
      dropRate: r.pick([0, 0.01, 0.05, 0.2]),
      dupRate: r.pick([0, 0.02, 0.1]),
      delayMin: 1,
      delayMax: r.pick([3, 10, 30, 80]),
    },
  };
}

export function crashSome(sim: Simulation): void {
  if (!sim.chaos) return;
  const candidates = [...sim.nodes.values()].filter((n) => n.up && !n.decommissioned);
  if (candidates.length > 0) {
    // Prefer the leader now and then: leader crashes are the interesting ones.
    const leader = candidates.find((n) => n.loop.isLeader());
    const n = leader && sim.rng.chance(0.4) ? leader : sim.rng.pick(candidates);
    crashNode(sim, n);
    sim.schedule(sim.rng.range(1, sim.profile.restartMaxTicks) * TICK, { kind: "restart", node: n.id });
  }
  sim.schedule(sim.rng.range(1, sim.profile.crashEvery), { kind: "crash", node: 0 });
}

export function partition(sim: Simulation): void {
  const ids = sim.liveIds();
  const links: [NodeId, NodeId][] = [];
  const block = (a: NodeId, b: NodeId): void => {
    if (a === b || sim.net.isBlocked(a, b)) return;
    sim.net.block(a, b);
    links.push([a, b]);
  };
  const kind = sim.rng.pick(["split", "isolate", "asymmetric", "clog"] as const);
  if (kind === "split") {
    const side = new Set(ids.filter(() => sim.rng.chance(0.5)));
    for (const a of ids) for (const b of ids) if (side.has(a) !== side.has(b)) block(a, b);
  } else if (kind === "isolate") {
    const x = sim.rng.pick(ids);
    for (const b of ids) {
      block(x, b);
      block(b, x);
    }
  } else if (kind === "asymmetric") {
    const n = sim.rng.range(1, ids.length);
    for (let i = 0; i < n; i++) block(sim.rng.pick(ids), sim.rng.pick(ids));
  } else {
    // Clog one link at a time, then heal them one by one in a random order.
    const n = sim.rng.range(1, ids.length * 2);
    for (let i = 0; i < n; i++) {
      const a = sim.rng.pick(ids);
      const b = sim.rng.pick(ids);
      if (a === b || sim.net.isBlocked(a, b)) continue;
      sim.net.block(a, b);
      sim.schedule(sim.rng.range(1, 40) * TICK, { kind: "heal", links: [[a, b]] });
    }
    sim.trace(`clog: ${sim.net.blockedLinks().join(" ")}`);
    return;
  }
  sim.trace(`partition ${kind}: ${sim.net.blockedLinks().join(" ")}`);
  sim.schedule(sim.rng.range(5, 80) * TICK, { kind: "heal", links });
}

export function isolate(sim: Simulation, id: NodeId, forTime: number): void {
  const links: [NodeId, NodeId][] = [];
  for (const other of sim.liveIds()) {
    if (other === id) continue;
    for (const [a, b] of [
      [id, other],
      [other, id],
    ] as const) {
      if (sim.net.isBlocked(a, b)) continue;
      sim.net.block(a, b);
      links.push([a, b]);
    }
  }
  sim.trace(`isolate ${id}`);
  sim.schedule(forTime, { kind: "heal", links });
}

export function stopFaults(sim: Simulation): void {
  sim.chaos = false;
  sim.net.healAll();
  sim.net.faults = CALM;
  sim.livenessStart = sim.now;
  sim.livenessFloor = sim.nextRequestId;
  // Members removed from every live configuration are shut down, as an operator would.
  const inConfig = new Set<NodeId>();
  for (const n of sim.nodes.values()) {
    if (!n.up && !n.decommissioned) {
      startNode(sim, n);
      sim.trace(`restart ${n.id} (healing)`);
    }
  }
  for (const n of sim.nodes.values()) {
    const cs = n.loop.status().confState;
    for (const v of [...cs.voters, ...cs.learners]) inConfig.add(v);
  }
  sim.trace(`faults stopped; members ${[...inConfig].join(",")}`);
}
