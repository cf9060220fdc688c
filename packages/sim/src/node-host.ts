// A simulated server's process: production's Ready loop on a disk that loses unsynced writes, with
// every pause of the loop (a turn, a timer, a write syncing) an event of the run's queue.
import type { Application, Entry, Message, NodeId, Ready } from "@dispenser/raft";
import * as defaultRaft from "@dispenser/raft";
import { ELECTION_TICKS, HEARTBEAT_TICKS, MS_PER_UNIT, TICK } from "./events.js";
import type { SimDisk } from "./disk.js";
import type { SimOut } from "./node.js";
import { SimNode } from "./node.js";
import { SimStorage } from "./sim-storage.js";
import type { Simulation } from "./simulation.js";

export function addNode(sim: Simulation, id: NodeId, disk: SimDisk): SimNode {
  const n = new SimNode(id, disk, sim.rng.pick([5, 20, 60, 1000000]));
  sim.nodes.set(id, n);
  startNode(sim, n);
  return n;
}

export function startNode(sim: Simulation, n: SimNode): void {
  const { storage: mem, snapshot } = n.disk.load();
  n.incarnation++;
  n.up = true;
  n.checkedCommit = 0;
  n.leaderTermSeen = 0;
  n.sm = sim.app.restore(snapshot.data);
  n.markApplied = n.sm.totalMark();
  const inc = n.incarnation;
  /** Run `k` on this incarnation after `delay` units (never, if it crashes first). */
  const later = (delay: number, k: () => void): void =>
    sim.schedule(delay, { kind: "host", node: n.id, inc, k });
  const storage = (n.storage = new SimStorage(
    mem,
    n.disk,
    (k) => later(sim.rng.range(1, 5), k),
    (rd) => onSynced(sim, n, rd),
  ));
  // Tight limits (one entry per message, or two messages in flight) alongside generous ones;
  // never both at once, or a new member needs longer than the liveness bound to catch up. 512
  // bytes hold two or three ledger leases (169 bytes each with the entry overhead since leases
  // carry a return token; 256 came to one per message, and seed 74947 then missed the bound).
  const maxMsgBytes = sim.profile.oneEntryPerMessage ? 40 : sim.rng.pick([40, 512, 4096, 1 << 20]);
  const maxInflightMsgs = maxMsgBytes === 40 ? sim.rng.pick([64, 256]) : sim.rng.pick([2, 8, 256]);
  const raw = new sim.raft.RawNode({
    id: n.id,
    storage: mem,
    electionTicks: ELECTION_TICKS,
    heartbeatTicks: HEARTBEAT_TICKS,
    rand: sim.rng.fork(),
    appliedIndex: snapshot.meta.index,
    maxMsgBytes,
    maxInflightMsgs,
    // A small limit makes a leader push back when followers lag, instead of growing its log.
    maxUncommittedBytes: sim.rng.pick([600, 1 << 20]),
    maxApplyBytes: sim.rng.pick([100, 1 << 20]),
    maxPendingReads: 64,
  });
  const app: Application<SimOut> = {
    apply: (data, at) => n.sm.apply(data, at),
    beginSnapshot: () => defaultRaft.completedJob(n.sm.snapshot()),
    restore: (data) => {
      n.sm = sim.app.restore(data);
      n.markApplied = n.sm.totalMark();
    },
  };
  n.loop = new sim.raft.ReadyLoop<SimOut, undefined>({
    raw,
    storage,
    app,
    applied: snapshot.meta.index,
    // Each run of a node reads with ids of its own (production draws its start at random).
    firstReadId: 1 + n.incarnation * 2 ** 32,
    snapshotEntries: n.snapshotEvery,
    // Keep a few entries behind a snapshot so a slightly lagging follower needs no snapshot.
    compactMarginEntries: sim.rng.range(0, 5),
    maxPendingProposals: 1000,
    host: {
      send: (messages) => sendAll(sim, n, inc, messages),
      turn: (k) => later(sim.rng.range(0, 2), k),
      after: (ms, k) => {
        let live = true;
        later(Math.ceil(ms / MS_PER_UNIT), () => live && k());
        return () => {
          live = false;
        };
      },
      now: () => sim.now * MS_PER_UNIT,
      fatal: (err) =>
        sim.checker.fail("exception", err instanceof Error ? `${err.name}: ${err.message}` : String(err)),
    },
    events: {
      applied: (e) => onApplied(sim, n, e),
      settled: () => sim.observe(n),
      // Every message here comes from a real node: refusing one would drop what Raft needs.
      refused: (m, why) =>
        sim.checker.fail(
          "real-message-refused",
          `node ${n.id} refused ${m.type} from ${m.from}: ${why.kind}: ${why.detail}`,
        ),
    },
  });
  n.loop.start();
  sim.schedule(sim.rng.range(1, TICK), { kind: "tick", node: n.id, inc: n.incarnation });
}

export function crashNode(sim: Simulation, n: SimNode): void {
  sim.trace(`crash ${n.id}`);
  n.up = false;
  n.crashes++;
  n.incarnation++;
  n.disk.crash();
}

/** A Ready's write synced: its entries are on the disk now. */
export function onSynced(sim: Simulation, n: SimNode, rd: Ready): void {
  for (const e of rd.entries) sim.checker.persisted(n.id, e, n.disk.durableTerm(e.index - 1));
}

export function sendAll(sim: Simulation, n: SimNode, inc: number, messages: readonly Message[]): void {
  for (const m of messages) {
    const to = sim.nodes.get(m.to);
    const delays = to && to.up ? sim.net.fate(m.from, m.to) : [];
    for (const d of delays) sim.schedule(d, { kind: "deliver", m });
    if (m.type === defaultRaft.MessageType.Snap) {
      // The transport knows whether a snapshot stream failed: tell the leader either way.
      sim.schedule(delays.length > 0 ? delays[0]! : 5, {
        kind: "snapshot-status",
        from: n.id,
        inc,
        peer: m.to,
        ok: delays.length > 0,
      });
    }
  }
}

/** After the loop applied `e` on `n` (the application's part done, its proposer not yet answered). */
export function onApplied(sim: Simulation, n: SimNode, e: Entry): void {
  sim.checker.applyEntry(n.id, e);
  sim.checker.appliedDurable(
    n.id,
    e,
    n.disk.durableTerm(e.index) === e.term || n.disk.durableSnapshotIndex() >= e.index,
  );
  if (e.type === defaultRaft.EntryType.ConfChange) {
    const cc = defaultRaft.decodeConfChange(e.data);
    sim.trace(`node ${n.id} applies conf change ${JSON.stringify(cc)} at ${e.index}`);
    // A committed removal: the operator shuts the server down once the new configuration is
    // in force on a majority of its voters (before that they may still need its vote).
    if (cc.type === defaultRaft.ConfChangeType.Remove && !sim.removals.some((r) => r.index === e.index)) {
      sim.removals.push({ index: e.index, target: cc.nodeId });
    }
  }
  const after = n.sm.totalMark();
  sim.checker.mark(n.id, e.index, n.markApplied, after);
  n.markApplied = after;
}
