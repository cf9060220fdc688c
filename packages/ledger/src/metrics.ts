import { Counter, Gauge, Histogram } from "prom-client";
import type { Registry } from "prom-client";
import { BoundedLabels } from "@dispenser/plumbing";
import { PEER_REFUSAL_KINDS } from "./transport/refusals.js";

const ROLES = ["follower", "pre-candidate", "candidate", "leader"] as const;

/** Per sequence, what one node's state machine granted since the process started. */
export interface GrantTally {
  readonly segments: number;
  readonly windows: number;
  readonly ids: number;
  /** Per DC, the high-water mark after the last grant or accepted return. */
  readonly marks: ReadonlyMap<number, number>;
}

/** The ledger's Prometheus metrics, registered on a registry the process passes in. */
export class LedgerMetrics {
  private readonly sequenceLabels: BoundedLabels;
  readonly role: Gauge;
  readonly term: Gauge;
  readonly commitIndex: Gauge;
  readonly appliedIndex: Gauge;
  readonly leaderChanges: Counter;
  readonly proposalSeconds: Histogram;
  readonly fsyncSeconds: Histogram;
  readonly readySeconds: Histogram;
  readonly snapshots: Counter;
  readonly storageCorrupt: Gauge;
  readonly grants: Counter;
  readonly grantedIds: Counter;
  readonly grantErrors: Counter;
  readonly highWaterMark: Gauge;
  readonly messagesSent: Counter;
  readonly messagesDropped: Counter;
  readonly amnesiaRefusals: Counter;
  readonly messagesRefused: Counter;
  /** Per node id, its application's tallies (see addGrantSource). */
  private readonly grantSources = new Map<string, () => ReadonlyMap<string, GrantTally>>();

  /**
   * `maxSequenceSeries`: sequences with series of their own; grants of the others are summed, and
   * their marks kept at the highest, under sequence="(other)" (BoundedLabels).
   */
  constructor(registry: Registry, nodeId: number, maxSequenceSeries = 1_000) {
    this.sequenceLabels = new BoundedLabels(maxSequenceSeries);
    const labels = { node: String(nodeId) };
    const reg = [registry];
    this.role = new Gauge({
      name: "dispenser_ledger_raft_role",
      help: "1 for the node's current Raft role",
      labelNames: ["node", "role"],
      registers: reg,
    });
    this.term = new Gauge({
      name: "dispenser_ledger_raft_term",
      help: "Current Raft term",
      labelNames: ["node"],
      registers: reg,
    });
    this.commitIndex = new Gauge({
      name: "dispenser_ledger_raft_commit_index",
      help: "Highest index known committed",
      labelNames: ["node"],
      registers: reg,
    });
    this.appliedIndex = new Gauge({
      name: "dispenser_ledger_raft_applied_index",
      help: "Highest index applied to the ledger",
      labelNames: ["node"],
      registers: reg,
    });
    this.leaderChanges = new Counter({
      name: "dispenser_ledger_raft_leader_changes_total",
      help: "Times the known leader changed",
      labelNames: ["node"],
      registers: reg,
    });
    this.proposalSeconds = new Histogram({
      name: "dispenser_ledger_proposal_seconds",
      help: "From proposal to applied result on the leader",
      labelNames: ["node"],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: reg,
    });
    this.fsyncSeconds = new Histogram({
      name: "dispenser_ledger_fsync_seconds",
      help: "Duration of one synced LevelDB batch (one Ready)",
      labelNames: ["node"],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      registers: reg,
    });
    this.readySeconds = new Histogram({
      name: "dispenser_ledger_ready_seconds",
      help: "Duration of one Ready cycle: persist, send, apply, advance",
      labelNames: ["node"],
      buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      registers: reg,
    });
    this.snapshots = new Counter({
      name: "dispenser_ledger_snapshots_total",
      help: "Snapshots taken or installed",
      labelNames: ["node", "kind"],
      registers: reg,
    });
    this.storageCorrupt = new Gauge({
      name: "dispenser_ledger_storage_corrupt",
      help: "1 when the node refused its on-disk log as corrupt",
      labelNames: ["node"],
      registers: reg,
    });
    this.grants = new Counter({
      name: "dispenser_ledger_grants_total",
      help: "Segments granted (applied on this node)",
      labelNames: ["node", "sequence", "kind"],
      registers: reg,
      collect: () => {
        this.grants.reset();
        for (const [node, sequence, t] of this.tallies()) {
          if (t.segments > 0) this.grants.inc({ node, sequence, kind: "segment" }, t.segments);
          if (t.windows > 0) this.grants.inc({ node, sequence, kind: "window" }, t.windows);
        }
      },
    });
    this.grantedIds = new Counter({
      name: "dispenser_ledger_granted_ids_total",
      help: "Ids granted in segments",
      labelNames: ["node", "sequence"],
      registers: reg,
      collect: () => {
        this.grantedIds.reset();
        for (const [node, sequence, t] of this.tallies())
          if (t.ids > 0) this.grantedIds.inc({ node, sequence }, t.ids);
      },
    });
    this.grantErrors = new Counter({
      name: "dispenser_ledger_command_errors_total",
      help: "Commands rejected by the state machine",
      labelNames: ["node", "code"],
      registers: reg,
    });
    this.highWaterMark = new Gauge({
      name: "dispenser_ledger_high_water_mark",
      help: "Per sequence and DC: counter mark of everything granted",
      labelNames: ["node", "sequence", "dc"],
      registers: reg,
      collect: () => {
        this.highWaterMark.reset();
        const highest = new Map<string, { node: string; sequence: string; dc: string; mark: number }>();
        for (const [node, sequence, t] of this.tallies())
          for (const [dc, mark] of t.marks) {
            const key = `${node}\n${sequence}\n${dc}`;
            const seen = highest.get(key);
            if (!seen || seen.mark < mark) highest.set(key, { node, sequence, dc: String(dc), mark });
          }
        for (const h of highest.values())
          this.highWaterMark.set({ node: h.node, sequence: h.sequence, dc: h.dc }, h.mark);
      },
    });
    this.messagesSent = new Counter({
      name: "dispenser_ledger_peer_messages_sent_total",
      help: "Raft messages sent to peers",
      labelNames: ["node"],
      registers: reg,
    });
    this.messagesDropped = new Counter({
      name: "dispenser_ledger_peer_messages_dropped_total",
      help: "Raft messages dropped (queue full or peer unreachable)",
      labelNames: ["node"],
      registers: reg,
    });
    this.amnesiaRefusals = new Counter({
      name: "dispenser_ledger_peer_amnesia_refusals_total",
      help: "Messages refused because a peer came back with a new data directory under its old id",
      labelNames: ["node", "peer"],
      registers: reg,
    });
    this.messagesRefused = new Counter({
      name: "dispenser_ledger_peer_messages_refused_total",
      help: "Peer messages dropped because they broke a rule, by kind (a fixed set)",
      labelNames: ["node", "kind"],
      registers: reg,
    });
    for (const kind of PEER_REFUSAL_KINDS) this.messagesRefused.inc({ ...labels, kind }, 0);
    for (const r of ROLES) this.role.set({ ...labels, role: r }, 0);
    this.storageCorrupt.set(labels, 0);
  }

  /**
   * Grants are counted by the application in plain maps and become series when scraped: setting
   * three labelled series per lease cost a leader about 2% of its CPU.
   */
  addGrantSource(nodeId: number, source: () => ReadonlyMap<string, GrantTally>): void {
    this.grantSources.set(String(nodeId), source);
  }

  private *tallies(): Iterable<[string, string, GrantTally]> {
    for (const [node, source] of this.grantSources)
      for (const [sequence, t] of source()) yield [node, this.sequenceLabels.of(sequence), t];
  }

  setRole(nodeId: number, role: string): void {
    for (const r of ROLES) this.role.set({ node: String(nodeId), role: r }, r === role ? 1 : 0);
  }
}
