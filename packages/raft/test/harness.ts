// A deterministic in-memory network of Raft nodes, in the style of etcd's interaction tests.
//
// Nothing happens unless the test asks: `tick` advances a node's clock, `ready` runs one Ready
// cycle of a node (persist, queue its messages, apply, advance), `deliver` hands queued messages to
// their recipients, and `stabilize` repeats the last two until the system is quiet. Messages on a
// cut link are dropped when delivered. Randomness comes from a seeded PRNG, so a run is a function
// of its seed.
//
// Two safety properties are checked on every Ready, so every test checks them: at most one leader
// per term, and every node applies the same entry at a given index.

import type {
  Entry,
  Message,
  NodeId,
  ProposeResult,
  RaftOptions,
  Rand,
  ReadState,
  Ready,
  Role,
  Snapshot,
} from "../src/index.js";
import { EntryType, MemoryStorage, Prng, RawNode } from "../src/index.js";

/** The seeded PRNG of the package (`float()` is uniform in [0, 1)). */
export function seededRand(seed: number): Rand & { float(): number } {
  return new Prng(seed);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
export const bytes = (s: string): Uint8Array => encoder.encode(s);
export const text = (b: Uint8Array): string => decoder.decode(b);

export const ELECTION_TICKS = 10;
export const HEARTBEAT_TICKS = 1;

export interface NodeSetup {
  /** Terms of the log entries after the bootstrap snapshot, i.e. at indexes 2, 3, ... */
  terms?: readonly number[];
  /** Durable term at start; defaults to the last entry's term. */
  term?: number;
  /** Durable vote at start. */
  vote?: NodeId;
  /** Option overrides for this node only. */
  options?: Partial<RaftOptions>;
}

export interface ClusterOptions {
  /** Learners of the bootstrap configuration. */
  learners?: readonly NodeId[];
  seed?: number;
  /** Option overrides for every node (defaults: electionTicks 10, heartbeatTicks 1). */
  options?: Partial<RaftOptions>;
  /** Per-node initial logs and options. */
  setup?: Readonly<Record<NodeId, NodeSetup>>;
}

/** One node and what its application has done. */
export interface Peer {
  readonly id: NodeId;
  node: RawNode;
  readonly storage: MemoryStorage;
  readonly options: Partial<RaftOptions>;
  /** The application's state: data of the applied normal entries (restored from snapshots). */
  state: string[];
  /** Every entry handed to the application, in order (not those covered by a snapshot). */
  readonly appliedEntries: Entry[];
  appliedIndex: number;
  readonly readStates: ReadState[];
}

function snapshotData(state: readonly string[]): Uint8Array {
  return bytes(JSON.stringify(state));
}

/** The application state a snapshot holds (none before the first snapshot). */
function snapshotState(snap: Snapshot): string[] {
  return snap.meta.index > 0 ? (JSON.parse(text(snap.data)) as string[]) : [];
}

export class Cluster {
  private readonly peers = new Map<NodeId, Peer>();
  /** Messages sent and not yet delivered, in send order. */
  queue: Message[] = [];
  /** Every message delivered so far (dropped ones excluded), for counting round trips. */
  readonly delivered: Message[] = [];
  /** Cut links, as "from->to". */
  private readonly cut = new Set<string>();
  /** Extra fault injection: matching messages are dropped when delivered. */
  dropIf: ((m: Message) => boolean) | undefined;
  private readonly seed: number;
  private readonly options: Partial<RaftOptions>;
  /** Safety bookkeeping: the leader seen in each term, the term applied at each index. */
  private readonly leaderOfTerm = new Map<number, NodeId>();
  private readonly appliedTerm = new Map<number, { id: NodeId; term: number }>();
  private restarts = 0;

  constructor(voters: readonly NodeId[], opts: ClusterOptions = {}) {
    this.seed = opts.seed ?? 1;
    this.options = opts.options ?? {};
    const learners = opts.learners ?? [];
    for (const id of [...voters, ...learners]) {
      const setup = opts.setup?.[id] ?? {};
      const storage = new MemoryStorage();
      const confState = { voters: [...voters], learners: [...learners] };
      storage.applySnapshot({ meta: { index: 1, term: 1, confState }, data: snapshotData([]) });
      const terms = setup.terms ?? [];
      storage.append(
        terms.map((term, i) => ({
          term,
          index: i + 2,
          type: EntryType.Normal,
          data: bytes(`${i + 2}@${term}`),
        })),
      );
      const term = setup.term ?? Math.max(1, ...terms);
      storage.setHardState({ term, vote: setup.vote ?? 0, commit: 1 });
      this.addPeer(id, storage, setup.options);
    }
  }

  /** A new, empty node (for membership changes): it learns everything from the leader. */
  add(id: NodeId, options: Partial<RaftOptions> = {}): Peer {
    return this.addPeer(id, new MemoryStorage(), options);
  }

  private newNode(
    id: NodeId,
    storage: MemoryStorage,
    options: Partial<RaftOptions>,
    incarnation: number,
  ): RawNode {
    return new RawNode({
      id,
      storage,
      electionTicks: ELECTION_TICKS,
      heartbeatTicks: HEARTBEAT_TICKS,
      rand: seededRand(this.seed * 1000 + id + incarnation * 100),
      ...this.options,
      ...options,
    });
  }

  private addPeer(id: NodeId, storage: MemoryStorage, options: Partial<RaftOptions> = {}): Peer {
    const node = this.newNode(id, storage, options, 0);
    const snap = storage.snapshot();
    const peer: Peer = {
      id,
      node,
      storage,
      options,
      state: snapshotState(snap),
      appliedEntries: [],
      appliedIndex: snap.meta.index,
      readStates: [],
    };
    this.peers.set(id, peer);
    return peer;
  }

  // ------------------------------------------------------------ inspection

  ids(): NodeId[] {
    return [...this.peers.keys()];
  }

  peer(id: NodeId): Peer {
    const p = this.peers.get(id);
    if (!p) throw new Error(`no node ${id}`);
    return p;
  }

  node(id: NodeId): RawNode {
    return this.peer(id).node;
  }

  role(id: NodeId): Role {
    return this.node(id).status().softState.role;
  }

  /** The leader this node believes in (0 for none). */
  lead(id: NodeId): NodeId {
    return this.node(id).status().softState.lead;
  }

  term(id: NodeId): number {
    return this.node(id).status().hardState.term;
  }

  commit(id: NodeId): number {
    return this.node(id).status().hardState.commit;
  }

  /** Terms of this node's log from index 1 (the bootstrap snapshot) up (compacted ones as undefined). */
  logTerms(id: NodeId): (number | undefined)[] {
    const n = this.node(id);
    const out: (number | undefined)[] = [];
    for (let i = 1; i <= n.status().lastIndex; i++) out.push(n.term(i));
    return out;
  }

  leaders(): NodeId[] {
    return this.ids().filter((id) => this.role(id) === "leader");
  }

  /** The one leader at the highest term among leaders; throws when there is none. */
  leader(): NodeId {
    const ls = this.leaders().sort((a, b) => this.term(b) - this.term(a));
    if (ls.length === 0) throw new Error("no leader");
    return ls[0]!;
  }

  // ------------------------------------------------------------ network

  /** Cut the one-way link from -> to. */
  drop(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}->${to}`);
  }

  /** Cut both directions between a and b. */
  partition(a: NodeId, b: NodeId): void {
    this.drop(a, b);
    this.drop(b, a);
  }

  /** Cut every link to and from `id`. */
  isolate(id: NodeId): void {
    for (const other of this.ids()) if (other !== id) this.partition(id, other);
  }

  /** Restore every link (fault injection with `dropIf` stays). */
  heal(): void {
    this.cut.clear();
  }

  private linkUp(m: Message): boolean {
    return !this.cut.has(`${m.from}->${m.to}`) && this.dropIf?.(m) !== true;
  }

  /** Remove and return the queued messages matching `filter`. */
  take(filter: (m: Message) => boolean = () => true): Message[] {
    const taken = this.queue.filter(filter);
    this.queue = this.queue.filter((m) => !filter(m));
    return taken;
  }

  /** Queue messages (e.g. ones taken earlier, or crafted by the test). */
  send(...msgs: Message[]): void {
    this.queue.push(...msgs);
  }

  /**
   * Deliver the queued messages matching `filter` (all by default) in send order; the others stay
   * queued. Messages on a cut link are dropped. Returns how many were taken off the queue.
   */
  deliver(filter: (m: Message) => boolean = () => true): number {
    const batch = this.take(filter);
    for (const m of batch) {
      const p = this.peers.get(m.to);
      if (!p || !this.linkUp(m)) continue;
      this.delivered.push(m);
      p.node.step(m);
    }
    return batch.length;
  }

  // ------------------------------------------------------------ Ready processing

  /**
   * One Ready cycle of node `id`, done as the Ready contract says: persist the snapshot, hard state
   * and entries; queue the messages; apply; advance. Returns the Ready, or undefined if none.
   */
  ready(id: NodeId): Ready | undefined {
    const p = this.peer(id);
    if (!p.node.hasReady()) return undefined;
    const rd = p.node.ready();
    if (rd.snapshot) p.storage.applySnapshot(rd.snapshot);
    if (rd.hardState) p.storage.setHardState(rd.hardState);
    p.storage.append(rd.entries);
    this.queue.push(...rd.messages);
    if (rd.snapshot) {
      p.state = snapshotState(rd.snapshot);
      p.appliedIndex = rd.snapshot.meta.index;
    }
    for (const e of rd.committedEntries) {
      if (e.index !== p.appliedIndex + 1)
        throw new Error(`node ${id} applied ${e.index} after ${p.appliedIndex}`);
      const other = this.appliedTerm.get(e.index);
      if (other && other.term !== e.term) {
        throw new Error(
          `index ${e.index} applied with term ${other.term} on ${other.id}, ${e.term} on ${id}`,
        );
      }
      this.appliedTerm.set(e.index, { id, term: e.term });
      p.appliedIndex = e.index;
      p.appliedEntries.push(e);
      if (e.type === EntryType.Normal && e.data.byteLength > 0) p.state.push(text(e.data));
    }
    p.readStates.push(...rd.readStates);
    p.node.advance();
    const { softState, hardState } = p.node.status();
    if (softState.role === "leader") {
      const other = this.leaderOfTerm.get(hardState.term);
      if (other !== undefined && other !== id)
        throw new Error(`two leaders in term ${hardState.term}: ${other} and ${id}`);
      this.leaderOfTerm.set(hardState.term, id);
    }
    return rd;
  }

  /** Run Ready cycles on every node until none has one. Returns whether any ran. */
  readyAll(): boolean {
    let any = false;
    for (let progress = true; progress;) {
      progress = false;
      for (const id of this.ids()) {
        if (this.ready(id)) progress = any = true;
      }
    }
    return any;
  }

  /**
   * Process Readys and deliver messages matching `filter` until nothing more happens. Messages not
   * matching stay queued. Throws if the system does not settle (a livelock is a bug too).
   */
  stabilize(filter: (m: Message) => boolean = () => true): void {
    for (let i = 0; i < 10_000; i++) {
      const readied = this.readyAll();
      const delivered = this.deliver(filter);
      if (!readied && delivered === 0) return;
    }
    throw new Error("cluster did not stabilize");
  }

  // ------------------------------------------------------------ inputs

  tick(id: NodeId, n = 1): void {
    for (let i = 0; i < n; i++) this.node(id).tick();
  }

  /** Let `ticks` ticks pass on every node, stabilizing after each. */
  run(ticks: number): void {
    for (let t = 0; t < ticks; t++) {
      for (const id of this.ids()) this.node(id).tick();
      this.stabilize();
    }
  }

  /**
   * Restart node `id` from what it persisted; messages in flight are kept. The application reloads
   * its state from the stored snapshot and re-applies the log after it: restarting at a later
   * applied index would need `initialState().confState` as of that index, which MemoryStorage (it
   * keeps the snapshot's) does not provide.
   */
  restart(id: NodeId): void {
    const p = this.peer(id);
    this.restarts++;
    const snap = p.storage.snapshot();
    p.state = snapshotState(snap);
    p.appliedIndex = snap.meta.index;
    p.node = this.newNode(id, p.storage, p.options, this.restarts);
  }

  /** Start an election at `id` (does not deliver anything). */
  campaign(id: NodeId): void {
    this.node(id).campaign();
  }

  /** Campaign at `id`, stabilize, and check that it won. */
  elect(id: NodeId): void {
    this.campaign(id);
    this.stabilize();
    if (this.role(id) !== "leader") throw new Error(`node ${id} did not win the election (${this.role(id)})`);
  }

  propose(id: NodeId, data: string): ProposeResult {
    return this.node(id).propose(bytes(data));
  }

  /** Snapshot node `id`'s application state at its applied index, then compact its log up to it. */
  compact(id: NodeId): Snapshot {
    const p = this.peer(id);
    const snap = p.storage.createSnapshot(p.appliedIndex, p.node.confState(), snapshotData(p.state));
    p.storage.compact(p.appliedIndex);
    return snap;
  }
}
