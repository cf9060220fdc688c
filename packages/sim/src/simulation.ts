import type { NodeId } from "@dispenser/raft";
import * as defaultRaft from "@dispenser/raft";
import type { SimAppKind } from "./apps.js";
import { ALLOCATOR, LEDGER } from "./apps.js";
import { Checker } from "./checker.js";
import type { Violation } from "./checker.js";
import { SimDisk } from "./disk.js";
import type { Event } from "./events.js";
import { ELECTION_TICKS, TICK } from "./events.js";
import { EventQueue } from "./heap.js";
import { crashSome, drawProfile, isolate, partition, stopFaults } from "./nemesis.js";
import { Network } from "./network.js";
import type { NetworkFaults } from "./network.js";
import type { ClientRequest, SimNode } from "./node.js";
import { addNode, crashNode, startNode } from "./node-host.js";
import { admin, clientRequest, propose, readRequest, transfer } from "./workload.js";

/** The parts of the Raft package the simulator drives (swappable to run a mutated copy). */
export interface RaftImpl {
  RawNode: typeof defaultRaft.RawNode;
  ReadyLoop: typeof defaultRaft.ReadyLoop;
}

export interface SimOptions {
  seed: number;
  /** The replicated application. Default: chosen by the seed. */
  app?: "allocator" | "ledger";
  /** Initial voters: 1, 3 or 5. Default: chosen by the seed (mostly 3 and 5). */
  clusterSize?: 1 | 3 | 5;
  /** Ticks of faults before the cluster is healed. */
  chaosTicks?: number;
  /** After healing, ticks within which a leader must commit a new proposal. */
  livenessTicks?: number;
  /** Print every notable event. */
  verbose?: boolean;
  /** With verbose: also print every delivered message. */
  traceMessages?: boolean;
  raft?: RaftImpl;
  log?: (line: string) => void;
}

export interface SimResult {
  seed: number;
  violations: Violation[];
  stats: {
    app: "allocator" | "ledger";
    clusterSize: number;
    events: number;
    ticks: number;
    acks: number;
    reads: number;
    crashes: number;
    leaders: number;
    confChanges: number;
    messagesSent: number;
    messagesDropped: number;
    livenessTicks: number | undefined;
  };
}

/**
 * A whole cluster in one process, driven by one seed: ticks, network faults, partitions, crashes
 * at any point of the Ready cycle, a disk that loses unsynced writes, clients, membership changes
 * and leader transfers. Checkers run as events happen; after the chaos phase the network heals and
 * the cluster must elect a leader and commit within a bound.
 */
export class Simulation {
  readonly rng: defaultRaft.Prng;
  readonly netRng: defaultRaft.Prng;
  readonly q = new EventQueue<Event>();
  readonly net: Network;
  readonly checker = new Checker();
  readonly nodes = new Map<NodeId, SimNode>();
  readonly raft: RaftImpl;
  readonly clusterSize: 1 | 3 | 5;
  /** This seed runs the leader-churn profile (see drawProfile). */
  readonly churn: boolean;
  readonly chaosTicks: number;
  readonly livenessTicks: number;
  now = 0;
  events = 0;
  nextNodeId: number;
  nextRequestId = 1;
  chaos = true;
  livenessStart = 0;
  livenessDone: number | undefined;
  livenessFloor = 0;
  leaderHint: NodeId = 0;
  leadersElected = 0;
  confChanges = 0;
  profile: {
    crashEvery: number;
    partitionEvery: number;
    clientEvery: number;
    /** Probability that a newly elected leader is killed within a few ticks (figure 8 histories). */
    killNewLeader: number;
    /** Probability that a leader is cut off (and maybe killed) right as its commit index advances. */
    isolateOnCommit: number;
    /** A killed new leader dies within this many ticks of its election. */
    killWithinTicks: number;
    /** A crashed node restarts within this many ticks. */
    restartMaxTicks: number;
    /** One entry per append message (a tight flow-control limit), or the node's drawn limit. */
    oneEntryPerMessage: boolean;
    faults: NetworkFaults;
  };
  readonly log: (line: string) => void;
  /** The replicated application: the plain allocator or the segment ledger's state machine. */
  readonly app: SimAppKind;
  /** Recent client requests, some of which are retried. */
  readonly recentRequests: ClientRequest[] = [];
  /** Committed removals whose target is still running. */
  removals: { index: number; target: NodeId }[] = [];

  constructor(readonly opts: SimOptions) {
    this.rng = new defaultRaft.Prng(opts.seed);
    this.netRng = this.rng.fork();
    this.net = new Network(this.netRng);
    this.raft = opts.raft ?? defaultRaft;
    this.clusterSize = opts.clusterSize ?? this.rng.pick([1, 3, 3, 5, 5] as const);
    this.churn = this.rng.chance(0.2);
    this.app =
      opts.app === "allocator"
        ? ALLOCATOR
        : opts.app === "ledger"
          ? LEDGER
          : this.rng.chance(0.5)
            ? LEDGER
            : ALLOCATOR;
    this.chaosTicks = opts.chaosTicks ?? 600;
    this.livenessTicks = opts.livenessTicks ?? 40 * ELECTION_TICKS;
    this.log = opts.log ?? ((line) => console.log(line));
    this.nextNodeId = this.clusterSize + 1;
    this.profile = drawProfile(this);
  }

  trace(line: string): void {
    if (this.opts.verbose) this.log(`[t=${(this.now / TICK).toFixed(1)}] ${line}`);
  }

  run(): SimResult {
    const voters = Array.from({ length: this.clusterSize }, (_, i) => i + 1);
    for (const id of voters) {
      const disk = new SimDisk();
      // Bootstrap: every initial member starts from the same snapshot holding the configuration.
      disk.write({
        installSnapshot: {
          meta: { index: 1, term: 1, confState: { voters, learners: [] } },
          data: this.app.initial().snapshot(),
        },
        hardState: { term: 1, vote: 0, commit: 1 },
      });
      disk.sync();
      addNode(this, id, disk);
    }
    this.net.faults = this.profile.faults;
    this.trace(`cluster of ${this.clusterSize}, profile ${JSON.stringify(this.profile)}`);
    this.schedule(this.rng.range(1, this.profile.crashEvery), { kind: "crash", node: 0 });
    this.schedule(this.rng.range(1, this.profile.partitionEvery), { kind: "partition" });
    this.schedule(1, { kind: "client" });
    this.schedule(this.rng.range(1, 50) * TICK, { kind: "read" });
    this.schedule(this.rng.range(20, 80) * TICK, { kind: "admin" });
    this.schedule(this.rng.range(20, 100) * TICK, { kind: "transfer" });
    this.schedule(this.rng.range(50, 150) * TICK, { kind: "faults" });
    this.schedule(this.chaosTicks * TICK, { kind: "liveness-start" });

    const end = (this.chaosTicks + this.livenessTicks) * TICK;
    while (this.q.size > 0 && this.checker.violations.length === 0) {
      const ev = this.q.pop()!;
      if (ev.time > end || this.livenessDone !== undefined) break;
      this.now = ev.time;
      this.checker.now = this.now;
      this.events++;
      try {
        this.handle(ev.item);
      } catch (e) {
        this.checker.fail("exception", e instanceof Error ? `${e.name}: ${e.message}` : String(e));
      }
    }
    if (this.opts.verbose) {
      for (const n of this.nodes.values()) {
        if (!n.up) continue;
        const st = n.loop.status();
        this.trace(
          `final ${n.id}: ${st.softState.role} term ${st.hardState.term} commit ${st.hardState.commit} applied ${st.applied} last ${st.lastIndex} conf ${JSON.stringify(st.confState)} progress ${JSON.stringify([...st.progress])}`,
        );
      }
    }
    if (this.checker.violations.length === 0 && this.livenessDone === undefined) {
      this.checker.fail(
        "liveness",
        `no proposal committed within ${this.livenessTicks} ticks after faults stopped`,
      );
    }
    return {
      seed: this.opts.seed,
      violations: this.checker.violations,
      stats: {
        app: this.app.name,
        clusterSize: this.clusterSize,
        events: this.events,
        ticks: Math.floor(this.now / TICK),
        acks: this.checker.acks,
        reads: this.checker.reads,
        crashes: [...this.nodes.values()].reduce((s, n) => s + n.crashes, 0),
        leaders: this.leadersElected,
        confChanges: this.confChanges,
        messagesSent: this.net.sent,
        messagesDropped: this.net.dropped,
        livenessTicks: this.livenessDone,
      },
    };
  }

  schedule(delay: number, ev: Event): void {
    this.q.push(this.now + Math.max(0, delay), ev);
  }

  // ---------------------------------------------------------------- nodes

  maybeDecommission(): void {
    this.removals = this.removals.filter((r) => {
      const target = this.nodes.get(r.target);
      if (!target || target.decommissioned) return false;
      const applied = [...this.nodes.values()].filter((n) => n.up && n.loop.status().applied >= r.index);
      const conf = applied
        .find((n) => !n.loop.status().confState.voters.includes(r.target))
        ?.loop.status().confState;
      if (!conf) return true;
      const have = conf.voters.filter((v) => applied.some((n) => n.id === v)).length;
      if (have < Math.floor(conf.voters.length / 2) + 1) return true;
      this.schedule(this.rng.range(0, 30) * TICK, { kind: "decommission", node: r.target });
      return false;
    });
  }

  /** Checks that look at a node's state after each of its steps. */
  observe(n: SimNode): void {
    if (!n.up) return;
    if (this.removals.length > 0) this.maybeDecommission();
    const st = n.loop.status();
    if (st.softState.role !== "leader") {
      n.prevVoters = st.confState.voters;
      return;
    }
    const term = st.hardState.term;
    this.checker.leader(term, n.id);
    this.leaderHint = n.id;
    if (n.leaderTermSeen !== term) {
      n.leaderTermSeen = term;
      this.leadersElected++;
      if (this.chaos && this.profile.killNewLeader > 0 && this.rng.chance(this.profile.killNewLeader)) {
        this.schedule(this.rng.range(0, this.profile.killWithinTicks * TICK), {
          kind: "kill",
          node: n.id,
          inc: n.incarnation,
        });
      }
      this.trace(
        `node ${n.id} leads term ${term} (last ${st.lastIndex}, conf ${JSON.stringify(st.confState)})`,
      );
      const first = n.storage.firstIndex();
      this.checker.newLeader(n.id, term, st.lastIndex, first, (i) => n.loop.raw.term(i));
      n.checkedCommit = Math.max(n.checkedCommit, st.hardState.commit);
    }
    const commit = st.hardState.commit;
    if (
      commit > n.checkedCommit &&
      this.chaos &&
      this.profile.isolateOnCommit > 0 &&
      this.rng.chance(this.profile.isolateOnCommit)
    ) {
      // The moment a leader learns of a commit is when the others know least about it: cut it
      // off before the news (and its newer entries) get out, and sometimes kill it too.
      isolate(this, n.id, this.rng.range(5, 40) * TICK);
      if (this.rng.chance(0.5))
        this.schedule(this.rng.range(0, TICK), { kind: "kill", node: n.id, inc: n.incarnation });
    }
    if (commit > n.checkedCommit) {
      for (let i = n.checkedCommit + 1; i <= commit; i++) {
        const t = n.loop.raw.term(i);
        if (t === undefined) continue;
        // The entry may have been committed just before a conf change applied in the same
        // advance(): a majority of either configuration is what the leader counted.
        this.checker.committedDurable(n.id, i, t, [st.confState.voters, n.prevVoters], (id) => {
          const d = this.nodes.get(id)?.disk;
          return d !== undefined && (d.durableTerm(i) === t || d.durableSnapshotIndex() >= i);
        });
      }
      n.checkedCommit = commit;
    }
    n.prevVoters = st.confState.voters;
  }

  // ---------------------------------------------------------------- events

  handle(ev: Event): void {
    switch (ev.kind) {
      case "tick": {
        const n = this.nodes.get(ev.node)!;
        if (!n.up || n.incarnation !== ev.inc) return;
        n.loop.tick();
        this.schedule(TICK, ev);
        return;
      }
      case "deliver": {
        if (this.opts.traceMessages)
          this.trace(
            `deliver ${ev.m.type} ${ev.m.from}→${ev.m.to} term ${ev.m.term} index ${ev.m.index} logTerm ${ev.m.logTerm} commit ${ev.m.commit} n=${ev.m.entries.length}${ev.m.reject ? ` reject hint ${ev.m.rejectHint}` : ""}`,
          );
        const n = this.nodes.get(ev.m.to);
        if (!n || !n.up || this.net.isBlocked(ev.m.from, ev.m.to)) return;
        n.loop.step([ev.m]);
        return;
      }
      case "host": {
        const n = this.nodes.get(ev.node)!;
        if (!n.up || n.incarnation !== ev.inc) return;
        ev.k();
        return;
      }
      case "snapshot-status": {
        const n = this.nodes.get(ev.from)!;
        if (!n.up || n.incarnation !== ev.inc) return;
        n.loop.reportSnapshot(ev.peer, ev.ok);
        return;
      }
      case "crash":
        crashSome(this);
        return;
      case "restart": {
        const n = this.nodes.get(ev.node)!;
        if (n.up || n.decommissioned) return;
        this.trace(`restart ${n.id}`);
        startNode(this, n);
        return;
      }
      case "client":
        clientRequest(this);
        if (this.chaos || this.livenessDone === undefined)
          this.schedule(this.rng.range(1, this.profile.clientEvery) * TICK, ev);
        return;
      case "read":
        readRequest(this);
        if (this.chaos) this.schedule(this.rng.range(5, 30) * TICK, ev);
        return;
      case "admin":
        admin(this);
        if (this.chaos) this.schedule(this.rng.range(20, 80) * TICK, ev);
        return;
      case "transfer":
        transfer(this);
        if (this.chaos) this.schedule(this.rng.range(30, 120) * TICK, ev);
        return;
      case "partition":
        if (!this.chaos) return;
        partition(this);
        this.schedule(this.rng.range(1, this.profile.partitionEvery), ev);
        return;
      case "heal":
        for (const [a, b] of ev.links) this.net.unblock(a, b);
        return;
      case "faults":
        if (!this.chaos) return;
        // Shift the network's behaviour mid-run, so quiet and stormy periods alternate.
        this.profile.faults = drawProfile(this).faults;
        this.net.faults = this.profile.faults;
        this.schedule(this.rng.range(50, 150) * TICK, ev);
        return;
      case "liveness-start":
        stopFaults(this);
        return;
      case "client-arrive": {
        const n = this.nodes.get(ev.node);
        if (n && n.up) propose(this, n, ev.request);
        return;
      }
      case "kill": {
        const n = this.nodes.get(ev.node)!;
        if (!n.up || n.incarnation !== ev.inc || !this.chaos) return;
        crashNode(this, n);
        this.schedule(this.rng.range(1, this.profile.restartMaxTicks) * TICK, {
          kind: "restart",
          node: n.id,
        });
        return;
      }
      case "decommission": {
        const n = this.nodes.get(ev.node);
        if (!n || n.decommissioned) return;
        this.trace(`decommission ${n.id}`);
        if (n.up) crashNode(this, n);
        n.decommissioned = true;
        return;
      }
    }
  }

  liveIds(): NodeId[] {
    return [...this.nodes.values()].filter((n) => !n.decommissioned).map((n) => n.id);
  }

  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.nodes.values()) {
      if (!n.up) continue;
      const st = n.loop.status();
      if (st.softState.role === "leader" && (!best || st.hardState.term > best.loop.status().hardState.term))
        best = n;
    }
    return best;
  }
}
