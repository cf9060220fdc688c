import type { Answer, Application, Entry, Message, NodeId, Ready } from "@dispenser/raft";
import * as defaultRaft from "@dispenser/raft";
import type { SimAppKind } from "./apps.js";
import { ALLOCATOR, LEDGER } from "./apps.js";
import { Checker } from "./checker.js";
import type { Violation } from "./checker.js";
import { SimDisk } from "./disk.js";
import { EventQueue } from "./heap.js";
import { CALM, Network } from "./network.js";
import type { NetworkFaults } from "./network.js";
import type { ClientRequest, SimOut } from "./node.js";
import { SimNode } from "./node.js";
import { Prng } from "./prng.js";
import { SimStorage } from "./sim-storage.js";

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

type Event =
  | { kind: "tick"; node: NodeId; inc: number }
  | { kind: "deliver"; m: Message }
  /** A step of a node's host: a turn of its event loop, a timer, a write that synced. */
  | { kind: "host"; node: NodeId; inc: number; k: () => void }
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
  | { kind: "client-arrive"; node: NodeId; request: ClientRequest }
  | { kind: "decommission"; node: NodeId }
  | { kind: "kill"; node: NodeId; inc: number }
  | { kind: "snapshot-status"; from: NodeId; inc: number; peer: NodeId; ok: boolean };

/** Time units per tick: message and disk delays are finer than a tick. */
const TICK = 10;
/** Milliseconds of the loop's clock per time unit: a tick is 50 ms, as in production. */
const MS_PER_UNIT = 5;
/** A read not confirmed within this long fails, as in production. */
const READ_TIMEOUT_MS = 5_000;
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
  private readonly recentRequests: ClientRequest[] = [];
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
    const { storage: mem, snapshot } = n.disk.load();
    n.incarnation++;
    n.up = true;
    n.checkedCommit = 0;
    n.leaderTermSeen = 0;
    n.sm = this.app.restore(snapshot.data);
    n.markApplied = n.sm.totalMark();
    const inc = n.incarnation;
    /** Run `k` on this incarnation after `delay` units (never, if it crashes first). */
    const later = (delay: number, k: () => void): void =>
      this.schedule(delay, { kind: "host", node: n.id, inc, k });
    const storage = (n.storage = new SimStorage(
      mem,
      n.disk,
      (k) => later(this.rng.range(1, 5), k),
      (rd) => this.synced(n, rd),
    ));
    // Tight limits (one entry per message, or two messages in flight) alongside generous ones;
    // never both at once, or a new member needs longer than the liveness bound to catch up. 512
    // bytes hold two or three ledger leases (169 bytes each with the entry overhead since leases
    // carry a return token; 256 came to one per message, and seed 74947 then missed the bound).
    const maxMsgBytes = this.profile.oneEntryPerMessage ? 40 : this.rng.pick([40, 512, 4096, 1 << 20]);
    const maxInflightMsgs = maxMsgBytes === 40 ? this.rng.pick([64, 256]) : this.rng.pick([2, 8, 256]);
    const raw = new this.raft.RawNode({
      id: n.id,
      storage: mem,
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
    const app: Application<SimOut> = {
      apply: (data, at) => n.sm.apply(data, at),
      beginSnapshot: () => defaultRaft.completedJob(n.sm.snapshot()),
      restore: (data) => {
        n.sm = this.app.restore(data);
        n.markApplied = n.sm.totalMark();
      },
    };
    n.loop = new this.raft.ReadyLoop<SimOut, undefined>({
      raw,
      storage,
      app,
      applied: snapshot.meta.index,
      snapshotEntries: n.snapshotEvery,
      // Keep a few entries behind a snapshot so a slightly lagging follower needs no snapshot.
      compactMarginEntries: this.rng.range(0, 5),
      maxPendingProposals: 1000,
      host: {
        send: (messages) => this.sendAll(n, inc, messages),
        turn: (k) => later(this.rng.range(0, 2), k),
        after: (ms, k) => {
          let live = true;
          later(Math.ceil(ms / MS_PER_UNIT), () => live && k());
          return () => {
            live = false;
          };
        },
        now: () => this.now * MS_PER_UNIT,
        fatal: (err) =>
          this.checker.fail("exception", err instanceof Error ? `${err.name}: ${err.message}` : String(err)),
      },
      events: {
        applied: (e) => this.applied(n, e),
        settled: () => this.observe(n),
      },
    });
    n.loop.start();
    this.schedule(this.rng.range(1, TICK), { kind: "tick", node: n.id, inc: n.incarnation });
  }

  private crash(n: SimNode): void {
    this.trace(`crash ${n.id}`);
    n.up = false;
    n.crashes++;
    n.incarnation++;
    n.disk.crash();
  }

  /** A Ready's write synced: its entries are on the disk now. */
  private synced(n: SimNode, rd: Ready): void {
    for (const e of rd.entries) this.checker.persisted(n.id, e, n.disk.durableTerm(e.index - 1));
  }

  private sendAll(n: SimNode, inc: number, messages: readonly Message[]): void {
    for (const m of messages) {
      const to = this.nodes.get(m.to);
      const delays = to && to.up ? this.net.fate(m.from, m.to) : [];
      for (const d of delays) this.schedule(d, { kind: "deliver", m });
      if (m.type === defaultRaft.MessageType.Snap) {
        // The transport knows whether a snapshot stream failed: tell the leader either way.
        this.schedule(delays.length > 0 ? delays[0]! : 5, {
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
  private applied(n: SimNode, e: Entry): void {
    this.checker.applyEntry(n.id, e);
    this.checker.appliedDurable(
      n.id,
      e,
      n.disk.durableTerm(e.index) === e.term || n.disk.durableSnapshotIndex() >= e.index,
    );
    if (e.type === defaultRaft.EntryType.ConfChange) {
      const cc = defaultRaft.decodeConfChange(e.data);
      this.trace(`node ${n.id} applies conf change ${JSON.stringify(cc)} at ${e.index}`);
      // A committed removal: the operator shuts the server down once the new configuration is
      // in force on a majority of its voters (before that they may still need its vote).
      if (cc.type === defaultRaft.ConfChangeType.Remove && !this.removals.some((r) => r.index === e.index)) {
        this.removals.push({ index: e.index, target: cc.nodeId });
      }
    }
    const after = n.sm.totalMark();
    this.checker.mark(n.id, e.index, n.markApplied, after);
    n.markApplied = after;
  }

  /** A client's proposal: its answer is checked against every other answer. */
  private propose(n: SimNode, req: ClientRequest): void {
    n.loop.propose(this.app.encodeRequest(req.key, req.requestId, req.size), {
      resolve: (out) => {
        const g = out?.grant;
        if (!out || !g || g.requestId !== req.requestId || out.key !== req.key) {
          this.checker.fail(
            "answer-is-own-entry",
            `node ${n.id} answered request ${req.requestId} (${req.key}) with ${JSON.stringify(out)}`,
          );
          return;
        }
        this.checker.ack(out.key, g, req.ackedEndAtPropose);
        if (this.livenessStart > 0 && this.livenessDone === undefined && g.requestId >= this.livenessFloor) {
          this.livenessDone = Math.ceil((this.now - this.livenessStart) / TICK);
          this.trace(`liveness: committed ${this.livenessDone} ticks after healing`);
        }
      },
      reject: (err) => {
        const leader = (err as { leader?: NodeId }).leader;
        if (leader !== undefined && leader !== 0) this.leaderHint = leader;
      },
    });
  }

  private maybeDecommission(): void {
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
  private observe(n: SimNode): void {
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
      this.isolate(n.id, this.rng.range(5, 40) * TICK);
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

  private handle(ev: Event): void {
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
        if (n && n.up) this.propose(n, ev.request);
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
      const leader = candidates.find((n) => n.loop.isLeader());
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
    const request: ClientRequest = retry ?? {
      key,
      requestId: this.nextRequestId++,
      size: this.rng.range(1, 1000),
      ackedEndAtPropose: this.checker.maxAckedEnd(key),
    };
    if (!retry) {
      this.recentRequests.push(request);
      if (this.recentRequests.length > 32) this.recentRequests.shift();
    }
    // Client traffic travels outside the faulty Raft network.
    this.schedule(this.rng.range(1, 5), { kind: "client-arrive", node: target, request });
  }

  private readRequest(): void {
    const ids = this.liveIds();
    const n = this.nodes.get(this.rng.pick(ids))!;
    const key = this.rng.pick(this.app.keys);
    if (!n.up) return;
    const ackedEndAtStart = this.checker.maxAckedEnd(key);
    n.loop.readBarrier(READ_TIMEOUT_MS, {
      resolve: () => this.checker.read(n.id, key, n.sm.markOf(key), ackedEndAtStart),
      reject: () => {},
    });
  }

  private leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.nodes.values()) {
      if (!n.up) continue;
      const st = n.loop.status();
      if (st.softState.role === "leader" && (!best || st.hardState.term > best.loop.status().hardState.term))
        best = n;
    }
    return best;
  }

  private admin(): void {
    const l = this.leader();
    if (!l) return;
    const cs = l.loop.status().confState;
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
    this.changeMembership(l, change, target);
    if (change === "add-learner") {
      // Start the new, empty server right away; it waits for the leader to contact it.
      this.nextNodeId++;
      this.addNode(target, new SimDisk());
    }
    this.confChanges++;
  }

  /**
   * Propose a membership change at the leader `l`. Its answer must find the change in force on
   * `l`: checked when the answer would reach its caller (a promise's reaction runs once the loop
   * yields; here, at the next event).
   */
  private changeMembership(l: SimNode, change: "add-learner" | "promote" | "remove", target: NodeId): void {
    const type =
      change === "add-learner"
        ? defaultRaft.ConfChangeType.AddLearner
        : change === "promote"
          ? defaultRaft.ConfChangeType.PromoteLearner
          : defaultRaft.ConfChangeType.Remove;
    const inc = l.incarnation;
    const answer: Answer<void> = {
      resolve: () =>
        this.schedule(0, {
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
            this.checker.membershipAnswered(l.id, `${change} ${target}`, inForce);
          },
        }),
      reject: () => {},
    };
    this.trace(`node ${l.id} proposes ${change} ${target}`);
    l.loop.proposeConfChange({ type, nodeId: target }, answer);
  }

  private transfer(): void {
    const l = this.leader();
    if (!l) return;
    const voters = l.loop.status().confState.voters.filter((v) => v !== l.id);
    if (voters.length === 0) return;
    const to = this.rng.pick(voters);
    this.trace(`transfer leadership ${l.id} → ${to}`);
    l.loop.transferLeader(to);
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
      const cs = n.loop.status().confState;
      for (const v of [...cs.voters, ...cs.learners]) inConfig.add(v);
    }
    this.trace(`faults stopped; members ${[...inConfig].join(",")}`);
  }
}
