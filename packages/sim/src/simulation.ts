import type { Message, NodeId } from "@dispenser/raft";
import * as defaultRaft from "@dispenser/raft";
import type { SimAppKind } from "./apps.js";
import { ALLOCATOR, LEDGER } from "./apps.js";
import { Checker } from "./checker.js";
import type { Violation } from "./checker.js";
import { SimDisk } from "./disk.js";
import { EventQueue } from "./heap.js";
import { CALM, Network } from "./network.js";
import type { NetworkFaults } from "./network.js";
import type { Input } from "./node.js";
import { SimNode } from "./node.js";
import { Prng } from "./prng.js";

/** The parts of the Raft package the simulator drives (swappable to run a mutated copy). */
export interface RaftImpl {
  RawNode: typeof defaultRaft.RawNode;
  MemoryStorage: typeof defaultRaft.MemoryStorage;
}

/** Deliberate breaches of the application's side of the contract, to prove the checkers catch them. */
export type AppMutation = "send-before-sync" | "apply-before-commit-sync";

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
  appMutation?: AppMutation;
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

type Event =
  | { kind: "tick"; node: NodeId; inc: number }
  | { kind: "deliver"; m: Message }
  | { kind: "phase"; node: NodeId; inc: number }
  | { kind: "crash"; node: NodeId }
  | { kind: "restart"; node: NodeId }
  | { kind: "client" }
  | { kind: "read" }
  | { kind: "admin" }
  | { kind: "transfer" }
  | { kind: "partition" }
  | { kind: "heal"; links: [NodeId, NodeId][] }
  | { kind: "faults" }
  | { kind: "liveness-start" }
  | { kind: "client-arrive"; node: NodeId; input: Input }
  | { kind: "decommission"; node: NodeId }
  | { kind: "kill"; node: NodeId; inc: number }
  | { kind: "snapshot-status"; from: NodeId; inc: number; peer: NodeId; ok: boolean };

/** Time units per tick: message and disk delays are finer than a tick. */
const TICK = 10;
const ELECTION_TICKS = 10;
const HEARTBEAT_TICKS = 2;

/**
 * A whole cluster in one process, driven by one seed: ticks, network faults, partitions, crashes
 * at any point of the Ready cycle, a disk that loses unsynced writes, clients, membership changes
 * and leader transfers. Checkers run as events happen; after the chaos phase the network heals and
 * the cluster must elect a leader and commit within a bound.
 */
export class Simulation {
  private readonly rng: Prng;
  private readonly netRng: Prng;
  private readonly q = new EventQueue<Event>();
  private readonly net: Network;
  readonly checker = new Checker();
  private readonly nodes = new Map<NodeId, SimNode>();
  private readonly raft: RaftImpl;
  private readonly clusterSize: 1 | 3 | 5;
  /** This seed runs the leader-churn profile (see drawProfile). */
  private readonly churn: boolean;
  private readonly chaosTicks: number;
  private readonly livenessTicks: number;
  private now = 0;
  private events = 0;
  private nextNodeId: number;
  private nextRequestId = 1;
  private chaos = true;
  private livenessStart = 0;
  private livenessDone: number | undefined;
  private livenessFloor = 0;
  private leaderHint: NodeId = 0;
  private leadersElected = 0;
  private confChanges = 0;
  private profile: {
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
  private readonly log: (line: string) => void;
  /** The replicated application: the plain allocator or the segment ledger's state machine. */
  private readonly app: SimAppKind;
  /** Recent client requests, some of which are retried. */
  private readonly recentRequests: Extract<Input, { kind: "propose" }>[] = [];
  /** Committed removals whose target is still running. */
  private removals: { index: number; target: NodeId }[] = [];

  constructor(private readonly opts: SimOptions) {
    this.rng = new Prng(opts.seed);
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
    this.profile = this.drawProfile();
  }

  private drawProfile(): Simulation["profile"] {
    const r = this.rng;
    if (this.churn) {
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

  private trace(line: string): void {
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
      this.addNode(id, disk);
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
        const st = n.raw.status();
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

  private schedule(delay: number, ev: Event): void {
    this.q.push(this.now + Math.max(0, delay), ev);
  }

  // ---------------------------------------------------------------- nodes

  private addNode(id: NodeId, disk: SimDisk): SimNode {
    const n = new SimNode(id, disk, this.rng.pick([5, 20, 60, 1000000]));
    this.nodes.set(id, n);
    this.start(n);
    return n;
  }

  private start(n: SimNode): void {
    const { storage, snapshot } = n.disk.load();
    n.incarnation++;
    n.up = true;
    n.phase = "idle";
    n.rd = undefined;
    n.inbox = [];
    n.proposals.clear();
    n.reads.clear();
    n.checkedCommit = 0;
    n.leaderTermSeen = 0;
    n.storage = storage;
    n.sm = this.app.restore(snapshot.data);
    // Tight limits (one entry per message, or two messages in flight) alongside generous ones;
    // never both at once, or a new member needs longer than the liveness bound to catch up. 512
    // bytes hold two or three ledger leases (169 bytes each with the entry overhead since leases
    // carry a return token; 256 came to one per message, and seed 74947 then missed the bound).
    const maxMsgBytes = this.profile.oneEntryPerMessage ? 40 : this.rng.pick([40, 512, 4096, 1 << 20]);
    const maxInflightMsgs = maxMsgBytes === 40 ? this.rng.pick([64, 256]) : this.rng.pick([2, 8, 256]);
    n.raw = new this.raft.RawNode({
      id: n.id,
      storage,
      electionTicks: ELECTION_TICKS,
      heartbeatTicks: HEARTBEAT_TICKS,
      rand: this.rng.fork(),
      appliedIndex: snapshot.meta.index,
      maxMsgBytes,
      maxInflightMsgs,
      // A small limit makes a leader push back when followers lag, instead of growing its log.
      maxUncommittedBytes: this.rng.pick([600, 1 << 20]),
      maxApplyBytes: this.rng.pick([100, 1 << 20]),
      maxPendingReads: 64,
    });
    this.schedule(this.rng.range(1, TICK), { kind: "tick", node: n.id, inc: n.incarnation });
  }

  private crash(n: SimNode): void {
    this.trace(`crash ${n.id} in phase ${n.phase}`);
    n.up = false;
    n.crashes++;
    n.incarnation++;
    n.disk.crash();
  }

  private input(n: SimNode, i: Input): void {
    if (!n.up) return;
    if (n.phase !== "idle") {
      if (n.inbox.length < 10000) n.inbox.push(i);
      return;
    }
    this.process(n, i);
    this.kick(n);
  }

  private process(n: SimNode, i: Input): void {
    const raw = n.raw;
    switch (i.kind) {
      case "msg":
        raw.step(i.m);
        return;
      case "tick":
        raw.tick();
        return;
      case "propose": {
        const r = raw.propose(this.app.encodeRequest(i.key, i.requestId, i.size));
        if (r.ok)
          n.proposals.set(r.index, {
            term: r.term,
            requestId: i.requestId,
            key: i.key,
            ackedEndAtPropose: i.ackedEndAtPropose,
          });
        else if (r.leader !== 0) this.leaderHint = r.leader;
        return;
      }
      case "read":
        if (raw.readIndex(i.requestId))
          n.reads.set(i.requestId, { key: i.key, ackedEndAtStart: i.ackedEndAtStart, index: undefined });
        return;
      case "transfer":
        raw.transferLeader(i.to);
        return;
      case "conf": {
        const type =
          i.change === "add-learner"
            ? defaultRaft.ConfChangeType.AddLearner
            : i.change === "promote"
              ? defaultRaft.ConfChangeType.PromoteLearner
              : defaultRaft.ConfChangeType.Remove;
        const r = raw.proposeConfChange({ type, nodeId: i.target });
        this.trace(`node ${n.id} proposes ${i.change} ${i.target}: ${r.ok ? `index ${r.index}` : r.code}`);
        return;
      }
      case "snap-status":
        raw.reportSnapshot(i.peer, i.ok);
        return;
    }
  }

  /** Start processing a Ready if there is one and the node is idle. */
  private kick(n: SimNode): void {
    if (!n.up || n.phase !== "idle") return;
    this.observe(n);
    if (!n.raw.hasReady()) return;
    const rd = n.raw.ready();
    n.rd = rd;
    if (rd.snapshot || rd.entries.length > 0 || rd.hardState) {
      n.disk.write({
        ...(rd.hardState ? { hardState: rd.hardState } : {}),
        ...(rd.snapshot ? { installSnapshot: rd.snapshot } : {}),
        ...(rd.entries.length > 0 ? { entries: rd.entries } : {}),
      });
    }
    // A leader's appends may go out while its own write is in flight (the core says when).
    if (this.opts.appMutation === "send-before-sync" || rd.sendBeforePersist) this.sendAll(n);
    n.phase = "syncing";
    this.schedule(this.rng.range(1, 5), { kind: "phase", node: n.id, inc: n.incarnation });
  }

  private phase(n: SimNode): void {
    const rd = n.rd!;
    switch (n.phase) {
      case "syncing": {
        n.disk.sync();
        if (rd.snapshot) n.storage.applySnapshot(rd.snapshot);
        if (rd.entries.length > 0) {
          n.storage.append(rd.entries);
          for (const e of rd.entries) this.checker.persisted(n.id, e, n.disk.durableTerm(e.index - 1));
        }
        if (rd.hardState) n.storage.setHardState(rd.hardState);
        n.phase = "sending";
        break;
      }
      case "sending":
        if (this.opts.appMutation !== "send-before-sync" && !rd.sendBeforePersist) this.sendAll(n);
        n.phase = "applying";
        break;
      case "applying":
        this.apply(n);
        n.phase = "advancing";
        break;
      case "advancing": {
        n.raw.advance();
        n.rd = undefined;
        n.phase = "idle";
        this.maybeSnapshot(n);
        const inbox = n.inbox;
        n.inbox = [];
        for (const i of inbox) this.process(n, i);
        this.kick(n);
        return;
      }
      case "idle":
        return;
    }
    this.schedule(this.rng.range(0, 2), { kind: "phase", node: n.id, inc: n.incarnation });
  }

  private sendAll(n: SimNode): void {
    for (const m of n.rd!.messages) {
      const to = this.nodes.get(m.to);
      const delays = to && to.up ? this.net.fate(m.from, m.to) : [];
      for (const d of delays) this.schedule(d, { kind: "deliver", m });
      if (m.type === defaultRaft.MessageType.Snap) {
        // The transport knows whether a snapshot stream failed: tell the leader either way.
        this.schedule(delays.length > 0 ? delays[0]! : 5, {
          kind: "snapshot-status",
          from: n.id,
          inc: n.incarnation,
          peer: m.to,
          ok: delays.length > 0,
        });
      }
    }
  }

  private apply(n: SimNode): void {
    const rd = n.rd!;
    if (rd.snapshot) n.sm = this.app.restore(rd.snapshot.data);
    for (const e of rd.committedEntries) {
      this.checker.applyEntry(n.id, e);
      if (e.type === defaultRaft.EntryType.ConfChange) {
        const cc = defaultRaft.decodeConfChange(e.data);
        this.trace(`node ${n.id} applies conf change ${JSON.stringify(cc)} at ${e.index}`);
        // A committed removal: the operator shuts the server down once the new configuration is
        // in force on a majority of its voters (before that they may still need its vote).
        if (
          cc.type === defaultRaft.ConfChangeType.Remove &&
          !this.removals.some((r) => r.index === e.index)
        ) {
          this.removals.push({ index: e.index, target: cc.nodeId });
        }
      }
      const before = n.sm.totalMark();
      const out =
        e.type === defaultRaft.EntryType.Normal && e.data.byteLength > 0 ? n.sm.apply(e.data, e) : undefined;
      this.checker.mark(n.id, e.index, before, n.sm.totalMark());
      const p = n.proposals.get(e.index);
      if (p) {
        n.proposals.delete(e.index);
        const g = out?.grant;
        if (out && g && p.term === e.term && p.requestId === g.requestId && p.key === out.key) {
          this.checker.ack(out.key, g, p.ackedEndAtPropose);
          if (
            this.livenessStart > 0 &&
            this.livenessDone === undefined &&
            g.requestId >= this.livenessFloor
          ) {
            this.livenessDone = Math.ceil((this.now - this.livenessStart) / TICK);
            this.trace(`liveness: committed ${this.livenessDone} ticks after healing`);
          }
        }
      }
    }
    for (const rs of rd.readStates) {
      const r = n.reads.get(rs.requestId);
      if (r) r.index = rs.index;
    }
    const applied = rd.committedEntries.at(-1)?.index ?? rd.snapshot?.meta.index ?? n.raw.status().applied;
    for (const [id, r] of n.reads) {
      if (r.index !== undefined && r.index <= applied) {
        this.checker.read(n.id, r.key, n.sm.markOf(r.key), r.ackedEndAtStart);
        n.reads.delete(id);
      }
    }
    if (n.proposals.size > 1000) n.proposals.clear(); // Bounded: old proposals are lost requests.
  }

  private maybeSnapshot(n: SimNode): void {
    const st = n.raw.status();
    const snapIndex = n.storage.firstIndex() - 1;
    if (st.applied - n.disk.durableSnapshotIndex() < n.snapshotEvery || st.applied <= snapIndex) return;
    const snap = n.storage.createSnapshot(st.applied, n.raw.confState(), n.sm.snapshot());
    n.disk.write({ localSnapshot: snap });
    n.disk.sync();
    // Keep a few entries behind the snapshot so a slightly lagging follower needs no snapshot.
    const compactTo = st.applied - this.rng.range(0, 5);
    if (compactTo > n.storage.firstIndex()) n.storage.compact(compactTo);
  }

  private maybeDecommission(): void {
    this.removals = this.removals.filter((r) => {
      const target = this.nodes.get(r.target);
      if (!target || target.decommissioned) return false;
      const applied = [...this.nodes.values()].filter((n) => n.up && n.raw.status().applied >= r.index);
      const conf = applied
        .find((n) => !n.raw.status().confState.voters.includes(r.target))
        ?.raw.status().confState;
      if (!conf) return true;
      const have = conf.voters.filter((v) => applied.some((n) => n.id === v)).length;
      if (have < Math.floor(conf.voters.length / 2) + 1) return true;
      this.schedule(this.rng.range(0, 30) * TICK, { kind: "decommission", node: r.target });
      return false;
    });
  }

  /** Checks that look at a node's state after each of its steps. */
  private observe(n: SimNode): void {
    if (this.removals.length > 0) this.maybeDecommission();
    const st = n.raw.status();
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
      this.checker.newLeader(n.id, term, st.lastIndex, first, (i) => n.raw.term(i));
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
      this.isolate(n.id, this.rng.range(5, 40) * TICK);
      if (this.rng.chance(0.5))
        this.schedule(this.rng.range(0, TICK), { kind: "kill", node: n.id, inc: n.incarnation });
    }
    if (commit > n.checkedCommit) {
      for (let i = n.checkedCommit + 1; i <= commit; i++) {
        const t = n.raw.term(i);
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

  private handle(ev: Event): void {
    switch (ev.kind) {
      case "tick": {
        const n = this.nodes.get(ev.node)!;
        if (!n.up || n.incarnation !== ev.inc) return;
        this.input(n, { kind: "tick" });
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
        this.input(n, { kind: "msg", m: ev.m });
        return;
      }
      case "phase": {
        const n = this.nodes.get(ev.node)!;
        if (!n.up || n.incarnation !== ev.inc) return;
        this.phase(n);
        return;
      }
      case "snapshot-status": {
        const n = this.nodes.get(ev.from)!;
        if (!n.up || n.incarnation !== ev.inc) return;
        this.input(n, { kind: "snap-status", peer: ev.peer, ok: ev.ok });
        return;
      }
      case "crash":
        this.crashSome();
        return;
      case "restart": {
        const n = this.nodes.get(ev.node)!;
        if (n.up || n.decommissioned) return;
        this.trace(`restart ${n.id}`);
        this.start(n);
        return;
      }
      case "client":
        this.clientRequest();
        if (this.chaos || this.livenessDone === undefined)
          this.schedule(this.rng.range(1, this.profile.clientEvery) * TICK, ev);
        return;
      case "read":
        this.readRequest();
        if (this.chaos) this.schedule(this.rng.range(5, 30) * TICK, ev);
        return;
      case "admin":
        this.admin();
        if (this.chaos) this.schedule(this.rng.range(20, 80) * TICK, ev);
        return;
      case "transfer":
        this.transfer();
        if (this.chaos) this.schedule(this.rng.range(30, 120) * TICK, ev);
        return;
      case "partition":
        if (!this.chaos) return;
        this.partition();
        this.schedule(this.rng.range(1, this.profile.partitionEvery), ev);
        return;
      case "heal":
        for (const [a, b] of ev.links) this.net.unblock(a, b);
        return;
      case "faults":
        if (!this.chaos) return;
        // Shift the network's behaviour mid-run, so quiet and stormy periods alternate.
        this.profile.faults = this.drawProfile().faults;
        this.net.faults = this.profile.faults;
        this.schedule(this.rng.range(50, 150) * TICK, ev);
        return;
      case "liveness-start":
        this.stopFaults();
        return;
      case "client-arrive": {
        const n = this.nodes.get(ev.node);
        if (n) this.input(n, ev.input);
        return;
      }
      case "kill": {
        const n = this.nodes.get(ev.node)!;
        if (!n.up || n.incarnation !== ev.inc || !this.chaos) return;
        this.crash(n);
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
        if (n.up) this.crash(n);
        n.decommissioned = true;
        return;
      }
    }
  }

  private liveIds(): NodeId[] {
    return [...this.nodes.values()].filter((n) => !n.decommissioned).map((n) => n.id);
  }

  private crashSome(): void {
    if (!this.chaos) return;
    const candidates = [...this.nodes.values()].filter((n) => n.up && !n.decommissioned);
    if (candidates.length > 0) {
      // Prefer the leader now and then: leader crashes are the interesting ones.
      const leader = candidates.find((n) => n.raw.status().softState.role === "leader");
      const n = leader && this.rng.chance(0.4) ? leader : this.rng.pick(candidates);
      this.crash(n);
      this.schedule(this.rng.range(1, this.profile.restartMaxTicks) * TICK, { kind: "restart", node: n.id });
    }
    this.schedule(this.rng.range(1, this.profile.crashEvery), { kind: "crash", node: 0 });
  }

  private partition(): void {
    const ids = this.liveIds();
    const links: [NodeId, NodeId][] = [];
    const block = (a: NodeId, b: NodeId): void => {
      if (a === b || this.net.isBlocked(a, b)) return;
      this.net.block(a, b);
      links.push([a, b]);
    };
    const kind = this.rng.pick(["split", "isolate", "asymmetric", "clog"] as const);
    if (kind === "split") {
      const side = new Set(ids.filter(() => this.rng.chance(0.5)));
      for (const a of ids) for (const b of ids) if (side.has(a) !== side.has(b)) block(a, b);
    } else if (kind === "isolate") {
      const x = this.rng.pick(ids);
      for (const b of ids) {
        block(x, b);
        block(b, x);
      }
    } else if (kind === "asymmetric") {
      const n = this.rng.range(1, ids.length);
      for (let i = 0; i < n; i++) block(this.rng.pick(ids), this.rng.pick(ids));
    } else {
      // Clog one link at a time, then heal them one by one in a random order.
      const n = this.rng.range(1, ids.length * 2);
      for (let i = 0; i < n; i++) {
        const a = this.rng.pick(ids);
        const b = this.rng.pick(ids);
        if (a === b || this.net.isBlocked(a, b)) continue;
        this.net.block(a, b);
        this.schedule(this.rng.range(1, 40) * TICK, { kind: "heal", links: [[a, b]] });
      }
      this.trace(`clog: ${this.net.blockedLinks().join(" ")}`);
      return;
    }
    this.trace(`partition ${kind}: ${this.net.blockedLinks().join(" ")}`);
    this.schedule(this.rng.range(5, 80) * TICK, { kind: "heal", links });
  }

  private isolate(id: NodeId, forTime: number): void {
    const links: [NodeId, NodeId][] = [];
    for (const other of this.liveIds()) {
      if (other === id) continue;
      for (const [a, b] of [
        [id, other],
        [other, id],
      ] as const) {
        if (this.net.isBlocked(a, b)) continue;
        this.net.block(a, b);
        links.push([a, b]);
      }
    }
    this.trace(`isolate ${id}`);
    this.schedule(forTime, { kind: "heal", links });
  }

  private clientRequest(): void {
    const ids = this.liveIds();
    const target =
      this.nodes.get(this.leaderHint) && this.rng.chance(0.8) ? this.leaderHint : this.rng.pick(ids);
    // Now and then a client retries an earlier request (its answer was lost, say): it must get the
    // same grant. The bound is the one taken when the request was first sent: anything
    // acknowledged before then must lie below the grant.
    const retry =
      this.app.idempotent && this.recentRequests.length > 0 && this.rng.chance(0.1)
        ? this.rng.pick(this.recentRequests)
        : undefined;
    const key = retry?.key ?? this.rng.pick(this.app.keys);
    const input: Input = retry ?? {
      kind: "propose",
      key,
      requestId: this.nextRequestId++,
      size: this.rng.range(1, 1000),
      ackedEndAtPropose: this.checker.maxAckedEnd(key),
    };
    if (!retry) {
      this.recentRequests.push(input);
      if (this.recentRequests.length > 32) this.recentRequests.shift();
    }
    // Client traffic travels outside the faulty Raft network.
    this.schedule(this.rng.range(1, 5), { kind: "client-arrive", node: target, input });
  }

  private readRequest(): void {
    const ids = this.liveIds();
    const n = this.nodes.get(this.rng.pick(ids))!;
    const key = this.rng.pick(this.app.keys);
    this.input(n, {
      kind: "read",
      key,
      requestId: this.nextRequestId++,
      ackedEndAtStart: this.checker.maxAckedEnd(key),
    });
  }

  private leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.nodes.values()) {
      if (!n.up) continue;
      const st = n.raw.status();
      if (st.softState.role === "leader" && (!best || st.hardState.term > best.raw.status().hardState.term))
        best = n;
    }
    return best;
  }

  private admin(): void {
    const l = this.leader();
    if (!l) return;
    const cs = l.raw.status().confState;
    const members = cs.voters.length + cs.learners.length;
    // A one-node cluster may grow to three voters; others shrink by two and grow by one.
    const minVoters = Math.max(1, this.clusterSize - 2);
    const maxVoters = this.clusterSize === 1 ? 3 : this.clusterSize + 1;
    let change: "add-learner" | "promote" | "remove";
    let target: NodeId;
    const learner = cs.learners[0];
    if (learner !== undefined && this.rng.chance(0.7)) {
      change = this.rng.chance(0.85) ? "promote" : "remove";
      target = learner;
    } else if (cs.voters.length < maxVoters && members < maxVoters + 1 && this.rng.chance(0.5)) {
      change = "add-learner";
      target = this.nextNodeId;
    } else if (cs.voters.length > minVoters) {
      change = "remove";
      target = this.rng.pick(cs.voters);
    } else return;
    this.input(l, { kind: "conf", change, target });
    if (change === "add-learner") {
      // Start the new, empty server right away; it waits for the leader to contact it.
      this.nextNodeId++;
      this.addNode(target, new SimDisk());
    }
    this.confChanges++;
  }

  private transfer(): void {
    const l = this.leader();
    if (!l) return;
    const voters = l.raw.status().confState.voters.filter((v) => v !== l.id);
    if (voters.length === 0) return;
    const to = this.rng.pick(voters);
    this.trace(`transfer leadership ${l.id} → ${to}`);
    this.input(l, { kind: "transfer", to });
  }

  private stopFaults(): void {
    this.chaos = false;
    this.net.healAll();
    this.net.faults = CALM;
    this.livenessStart = this.now;
    this.livenessFloor = this.nextRequestId;
    // Members removed from every live configuration are shut down, as an operator would.
    const inConfig = new Set<NodeId>();
    for (const n of this.nodes.values()) {
      if (!n.up && !n.decommissioned) {
        this.start(n);
        this.trace(`restart ${n.id} (healing)`);
      }
    }
    for (const n of this.nodes.values()) {
      const cs = n.raw.status().confState;
      for (const v of [...cs.voters, ...cs.learners]) inConfig.add(v);
    }
    this.trace(`faults stopped; members ${[...inConfig].join(",")}`);
  }
}
