import { createHash, randomBytes } from "node:crypto";
import type { LedgerServer, Member, SequenceDefinition } from "@dispenser/proto";
import {
  ErrorReason,
  MAX_PAGE_SIZE,
  MemberRole,
  MemberState,
  ProgressState,
  SegmentKind,
  statusError,
  DEFAULT_PAGE_SIZE,
} from "@dispenser/proto";
import type { ConfChange, NodeId } from "@dispenser/raft";
import { ConfChangeType } from "@dispenser/raft";
import type { sendUnaryData, ServerUnaryCall } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import type { AppResult, LedgerApp } from "../ledger-app.js";
import { encodeLedgerCommand, encodeMemberAddress } from "../ledger-app.js";
import type { RaftServer } from "../raft-server/raft-server.js";
import { NotLeaderError, ProposalDroppedError, ProposalRejectedError } from "../raft-server/raft-server.js";
import type { Command } from "../state/commands.js";
import { validateCommand } from "../state/commands.js";
import type { SequenceRecord } from "../state/ledger-state.js";
import type { ErrorCode } from "../state/result.js";
import {
  AUTO_DISK_FROM_PB,
  LAYOUT_FROM_PB,
  ORDERING_FROM_PB,
  describeErrors,
  normalizeSequenceDef,
  toPbSequence,
} from "@dispenser/domain";

/** Names a backup writes per turn of the event loop. */
const BACKUP_SLICE_NAMES = 2_000;
/** A backup is answered in parts of at most this many bytes (messages are capped at 64 MiB). */
export const BACKUP_PART_BYTES = 16 * 2 ** 20;
/** How long a node keeps a backup for the calls fetching its parts, and how many it keeps. */
const BACKUP_KEEP_MS = 5 * 60_000;
const MAX_KEPT_BACKUPS = 2;

interface KeptBackup {
  readonly data: Uint8Array;
  readonly appliedIndex: bigint;
  readonly identity: string;
  readonly sha256: Uint8Array;
  readonly expiresAt: number;
}

export interface LedgerServiceDeps {
  clusterId: string;
  nodeId: NodeId;
  raft: RaftServer<AppResult>;
  app: () => LedgerApp;
  /** How clients reach a member: its advertised address. */
  addressOf: (id: NodeId) => string;
  now?: () => number;
  /** Bytes per part of a backup (tests make it small). Default BACKUP_PART_BYTES. */
  backupPartBytes?: number;
}

/** An error to send as a gRPC status. */
class CallError extends Error {
  constructor(
    readonly code: status,
    message: string,
    readonly reason: ErrorReason,
    readonly field = "",
  ) {
    super(message);
  }
}

const STATE_CODES: Record<ErrorCode, [status, ErrorReason]> = {
  "invalid-argument": [status.INVALID_ARGUMENT, ErrorReason.ERROR_REASON_INVALID_ARGUMENT],
  "not-found": [status.NOT_FOUND, ErrorReason.ERROR_REASON_NOT_FOUND],
  "already-exists": [status.ALREADY_EXISTS, ErrorReason.ERROR_REASON_ALREADY_EXISTS],
  exhausted: [status.RESOURCE_EXHAUSTED, ErrorReason.ERROR_REASON_SEQUENCE_EXHAUSTED],
  "failed-precondition": [status.FAILED_PRECONDITION, ErrorReason.ERROR_REASON_UNSPECIFIED],
  aborted: [status.ABORTED, ErrorReason.ERROR_REASON_REVISION_MISMATCH],
};

/** A grant's return token: 128 bits from the leader's CSPRNG, proposed with the lease. */
const mintReturnToken = (): string => randomBytes(16).toString("hex");

/** A catalog record as the ledger answers it. */
const pbOf = (r: SequenceRecord): SequenceDefinition =>
  toPbSequence(r.def, { revision: r.modRevision, createdAtMs: r.createdAtMs });

function enumIn<K>(m: ReadonlyMap<number, K>, v: number, field: string): K | undefined {
  if (v === 0) return undefined;
  const k = m.get(v);
  if (k === undefined)
    throw new CallError(
      status.INVALID_ARGUMENT,
      `${field} ${v} is not a known value`,
      ErrorReason.ERROR_REASON_INVALID_ARGUMENT,
      field,
    );
  return k;
}

function nodeIdOf(v: bigint, field: string): NodeId {
  if (v <= 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new CallError(
      status.INVALID_ARGUMENT,
      `${field} must be a positive node id`,
      ErrorReason.ERROR_REASON_INVALID_ARGUMENT,
      field,
    );
  }
  return Number(v);
}

/**
 * The public Ledger service. Writes go through Raft on the leader; a follower answers "not
 * leader" with the leader's address (FAILED_PRECONDITION + `dispenser-leader` trailer), which
 * clients follow. Reads are linearizable on any node (ReadIndex). Bad input is refused before
 * anything is proposed, so it changes nothing.
 */
export class LedgerService {
  private readonly now: () => number;
  /** The InitCluster in flight, if any: concurrent first leases share it. */
  private initializing: Promise<void> | undefined;
  /** Backups taken here, by id, until their parts are fetched (bounded, and they expire). */
  private readonly backups = new Map<string, KeptBackup>();

  constructor(private readonly d: LedgerServiceDeps) {
    this.now = d.now ?? Date.now;
  }

  /**
   * The cluster gets its identity from the first leader that grants anything: one InitCluster
   * with 128 random bits. The first committed wins (the state machine ignores later ones), so two
   * leaders racing cannot give it two.
   */
  private async ensureIdentity(): Promise<void> {
    if (this.d.app().state.identity !== "") return;
    this.initializing ??= this.command(
      { type: "InitCluster", identity: randomBytes(16).toString("hex") },
      (d) => (d.type === "InitCluster" ? d : undefined),
    )
      .then(() => undefined)
      .finally(() => (this.initializing = undefined));
    await this.initializing;
  }

  private notLeader(leader: NodeId): CallError {
    if (leader === 0)
      return new CallError(
        status.UNAVAILABLE,
        "no leader is known; retry shortly",
        ErrorReason.ERROR_REASON_NO_LEADER,
      );
    const e = new CallError(
      status.FAILED_PRECONDITION,
      `node ${this.d.nodeId} is not the leader; the leader is node ${leader} at ${this.d.addressOf(leader)}`,
      ErrorReason.ERROR_REASON_NOT_LEADER,
    );
    (e as CallError & { leader?: NodeId }).leader = leader;
    return e;
  }

  /** Proposals that get no result in time fail in the Raft server (ProposalDroppedError). */
  private async propose(data: Uint8Array): Promise<AppResult> {
    if (!this.d.raft.isLeader()) throw this.notLeader(this.d.raft.leader());
    try {
      return await this.d.raft.propose(data);
    } catch (e) {
      throw this.mapRaftError(e);
    }
  }

  private mapRaftError(e: unknown): unknown {
    if (e instanceof CallError) return e;
    if (e instanceof NotLeaderError) return this.notLeader(e.leader);
    if (e instanceof ProposalDroppedError)
      return new CallError(
        status.UNAVAILABLE,
        `${e.message}; retry with the same request id`,
        ErrorReason.ERROR_REASON_UNSPECIFIED,
      );
    if (e instanceof ProposalRejectedError) {
      switch (e.code) {
        case "too-many-uncommitted":
        case "too-many-pending":
          return new CallError(status.RESOURCE_EXHAUSTED, e.message, ErrorReason.ERROR_REASON_OVERLOADED);
        case "conf-change-pending":
          return new CallError(
            status.FAILED_PRECONDITION,
            "another membership change is still pending",
            ErrorReason.ERROR_REASON_MEMBERSHIP_CHANGE_PENDING,
          );
        case "invalid-conf-change":
          return new CallError(
            status.FAILED_PRECONDITION,
            e.message,
            ErrorReason.ERROR_REASON_UNSAFE_MEMBERSHIP_CHANGE,
          );
        case "transferring":
          return new CallError(
            status.UNAVAILABLE,
            "leadership is being transferred; retry shortly",
            ErrorReason.ERROR_REASON_NO_LEADER,
          );
        default:
          return new CallError(status.UNAVAILABLE, e.message, ErrorReason.ERROR_REASON_UNSPECIFIED);
      }
    }
    return e;
  }

  private async command<T>(
    cmd: Command,
    pick: (r: Extract<AppResult, { ok: true }>["data"]) => T | undefined,
  ): Promise<T> {
    const invalid = validateCommand(cmd);
    if (invalid !== undefined)
      throw new CallError(status.INVALID_ARGUMENT, invalid, ErrorReason.ERROR_REASON_INVALID_ARGUMENT);
    const r = await this.propose(encodeLedgerCommand(cmd));
    if (!r.ok) {
      const [code, reason] = STATE_CODES[r.code];
      throw new CallError(code, r.message, reason);
    }
    const out = pick(r.data);
    if (out === undefined)
      throw new CallError(status.INTERNAL, "unexpected result type", ErrorReason.ERROR_REASON_UNSPECIFIED);
    return out;
  }

  private members(): Member[] {
    const st = this.d.raft.status();
    const lead = st.softState.lead;
    const out: Member[] = [];
    const add = (id: NodeId, role: MemberRole): void => {
      const pr = st.progress.get(id);
      const self = id === this.d.nodeId;
      out.push({
        id: BigInt(id),
        address: this.d.addressOf(id),
        role,
        state: id === lead ? MemberState.MEMBER_STATE_LEADER : MemberState.MEMBER_STATE_FOLLOWER,
        self,
        term: self ? BigInt(st.hardState.term) : 0n,
        commit: self ? BigInt(st.hardState.commit) : 0n,
        applied: self ? BigInt(st.applied) : 0n,
        match: BigInt(pr?.match ?? 0),
        lag: pr ? BigInt(Math.max(0, st.lastIndex - pr.match)) : 0n,
        progress:
          pr?.state === "replicate"
            ? ProgressState.PROGRESS_STATE_REPLICATE
            : pr?.state === "snapshot"
              ? ProgressState.PROGRESS_STATE_SNAPSHOT
              : pr
                ? ProgressState.PROGRESS_STATE_PROBE
                : ProgressState.PROGRESS_STATE_UNSPECIFIED,
      });
    };
    for (const v of st.confState.voters) add(v, MemberRole.MEMBER_ROLE_VOTER);
    for (const l of st.confState.learners) add(l, MemberRole.MEMBER_ROLE_LEARNER);
    return out;
  }

  private async changeMembership(cc: ConfChange): Promise<Member[]> {
    if (!this.d.raft.isLeader()) throw this.notLeader(this.d.raft.leader());
    try {
      await this.d.raft.proposeConfChange(cc);
    } catch (e) {
      throw this.mapRaftError(e);
    }
    return this.members();
  }

  /** The state at a linearizable read, without grants, memo or tokens (see LedgerState.snapshot). */
  private async takeBackup(): Promise<KeptBackup> {
    await this.readBarrier();
    const st = this.d.raft.status();
    const state = this.d.app().state;
    const identity = state.identity;
    // Written a slice per turn of the event loop (copy on write keeps it at this point), so a
    // large state does not hold up the node's Raft loop.
    const job = state.beginSnapshot({ backup: true });
    try {
      while (!job.step(BACKUP_SLICE_NAMES)) await new Promise((r) => setImmediate(r));
    } finally {
      // A job given up (an exception) must not go on copying names at every command.
      job.cancel();
    }
    const data = job.result();
    return {
      data,
      appliedIndex: BigInt(st.applied),
      identity,
      sha256: createHash("sha256").update(data).digest(),
      expiresAt: this.now() + BACKUP_KEEP_MS,
    };
  }

  handlers(): LedgerServer {
    const unary =
      <Req, Res>(f: (req: Req) => Promise<Res> | Res) =>
      (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
        Promise.resolve()
          .then(() => f(call.request))
          .then(
            (res) => callback(null, res),
            (e: unknown) => {
              if (e instanceof CallError) {
                const leader = (e as CallError & { leader?: NodeId }).leader;
                callback(
                  statusError(e.code, e.message, {
                    reason: e.reason,
                    field: e.field,
                    ...(leader ? { leaderId: BigInt(leader), leaderAddress: this.d.addressOf(leader) } : {}),
                  }),
                  null,
                );
              } else {
                callback(
                  { code: status.INTERNAL, details: e instanceof Error ? e.message : String(e) },
                  null,
                );
              }
            },
          );
      };

    return {
      createSequence: unary(async (req) => {
        const s = req.sequence;
        if (!s)
          throw new CallError(
            status.INVALID_ARGUMENT,
            "sequence is required",
            ErrorReason.ERROR_REASON_INVALID_ARGUMENT,
            "sequence",
          );
        const layout = enumIn(LAYOUT_FROM_PB, s.layout, "layout");
        const ordering = enumIn(ORDERING_FROM_PB, s.ordering, "ordering");
        const autoDisk = enumIn(AUTO_DISK_FROM_PB, s.autoDisk, "auto_disk");
        // A field given is used as given (0 included: validation says what is wrong with it);
        // only a field left unset takes its default.
        const spec = normalizeSequenceDef({
          name: s.name,
          type: s.type,
          ...(s.length !== undefined ? { length: s.length } : {}),
          ...(s.starting !== undefined ? { starting: s.starting } : {}),
          ...(s.step !== undefined ? { step: s.step } : {}),
          ...(s.datacenters !== undefined ? { datacenters: s.datacenters } : {}),
          ...(layout ? { layout } : {}),
          ...(ordering ? { ordering } : {}),
          ...(autoDisk ? { autoDisk } : {}),
          ...(s.limits ? { limits: { maxSegmentSize: s.limits.maxSegmentSize } } : {}),
          ...(s.keyFingerprint ? { keyFingerprint: s.keyFingerprint } : {}),
          ...(s.reserveSeconds !== undefined ? { reserveSeconds: s.reserveSeconds } : {}),
        });
        if (!spec.ok) {
          throw new CallError(
            status.INVALID_ARGUMENT,
            describeErrors(spec.errors),
            ErrorReason.ERROR_REASON_INVALID_ARGUMENT,
            spec.errors[0]?.field ?? "",
          );
        }
        const rec = await this.command(
          { type: "CreateSequence", def: spec.def, createdAtMs: this.now() },
          (d) => (d.type === "CreateSequence" ? d.sequence : undefined),
        );
        return { sequence: pbOf(rec) };
      }),

      updateSequence: unary(async (req) => {
        const autoDisk =
          req.autoDisk === undefined ? undefined : enumIn(AUTO_DISK_FROM_PB, req.autoDisk, "auto_disk");
        const ordering =
          req.ordering === undefined ? undefined : enumIn(ORDERING_FROM_PB, req.ordering, "ordering");
        // The expected revision is checked by the state machine as it applies the entry, so two
        // racing updates cannot both pass it.
        const rec = await this.command(
          {
            type: "UpdateSequence",
            name: req.name,
            changes: {
              ...(autoDisk ? { autoDisk } : {}),
              ...(ordering ? { ordering } : {}),
              ...(req.limits ? { limits: { maxSegmentSize: req.limits.maxSegmentSize } } : {}),
              ...(req.reserveSeconds !== undefined ? { reserveSeconds: req.reserveSeconds } : {}),
            },
            ...expected(req.expectedRevision),
          },
          (d) => (d.type === "UpdateSequence" ? d.sequence : undefined),
        );
        return { sequence: pbOf(rec) };
      }),

      deleteSequence: unary(async (req) => {
        const revision = await this.command(
          { type: "DeleteSequence", name: req.name, ...expected(req.expectedRevision) },
          (d) => (d.type === "DeleteSequence" ? d.revision : undefined),
        );
        return { revision };
      }),

      getSequence: unary(async (req) => {
        const rec = await this.current(req.name);
        if (!rec)
          throw new CallError(
            status.NOT_FOUND,
            `sequence "${req.name}" does not exist`,
            ErrorReason.ERROR_REASON_NOT_FOUND,
            "name",
          );
        return { sequence: pbOf(rec) };
      }),

      listSequences: unary(async (req) => {
        await this.readBarrier();
        const limit = req.pageSize === 0 ? DEFAULT_PAGE_SIZE : Math.min(req.pageSize, MAX_PAGE_SIZE);
        const page = this.d.app().state.list({ ...(req.pageToken ? { after: req.pageToken } : {}), limit });
        if (!page.ok)
          throw new CallError(
            status.INVALID_ARGUMENT,
            page.message,
            ErrorReason.ERROR_REASON_INVALID_ARGUMENT,
          );
        return {
          sequences: page.data.sequences.map(pbOf),
          nextPageToken: page.data.next ?? "",
          revision: page.data.revision,
        };
      }),

      leaseSegment: unary(async (req) => {
        const kind = req.kind === SegmentKind.SEGMENT_KIND_WINDOW ? "window" : "segment";
        if (
          req.kind !== SegmentKind.SEGMENT_KIND_UNSPECIFIED &&
          req.kind !== SegmentKind.SEGMENT_KIND_SEGMENT &&
          req.kind !== SegmentKind.SEGMENT_KIND_WINDOW
        ) {
          throw new CallError(
            status.INVALID_ARGUMENT,
            `kind ${req.kind} is not a known value`,
            ErrorReason.ERROR_REASON_INVALID_ARGUMENT,
            "kind",
          );
        }
        await this.ensureIdentity();
        const out = await this.command(
          {
            type: "LeaseSegment",
            name: req.sequence,
            dc: req.dc,
            size: req.size,
            requestId: req.requestId,
            kind,
            returnToken: mintReturnToken(),
            ...(req.keyFingerprint ? { keyFingerprint: req.keyFingerprint } : {}),
          },
          (d) => (d.type === "LeaseSegment" ? d : undefined),
        );
        const g = out.grant;
        return {
          grant: {
            sequence: g.name,
            dc: g.dc,
            start: g.start,
            end: g.end,
            fence: { term: BigInt(g.fence.term), index: BigInt(g.fence.index) },
            kind: g.kind === "window" ? SegmentKind.SEGMENT_KIND_WINDOW : SegmentKind.SEGMENT_KIND_SEGMENT,
            // A replay answers the token of the first grant: the retrier is the requester.
            returnToken: g.returnToken,
          },
          sequenceRevision: this.d.app().state.get(g.name)?.modRevision ?? 0n,
          clusterIdentity: this.d.app().state.identity,
        };
      }),

      raiseMark: unary(async (req) => {
        const out = await this.command(
          { type: "RaiseMark", name: req.sequence, dc: req.dc, to: req.to },
          (d) => (d.type === "RaiseMark" ? d : undefined),
        );
        return { hwm: out.hwm, raised: out.raised };
      }),

      releaseRestore: unary(async () => {
        const out = await this.command({ type: "ReleaseRestore" }, (d) =>
          d.type === "ReleaseRestore" ? d : undefined,
        );
        return { wasHeld: out.held };
      }),

      backup: unary(async (req) => {
        const now = this.now();
        for (const [id, b] of this.backups) if (b.expiresAt <= now) this.backups.delete(id);
        let id = req.backupId;
        let b = this.backups.get(id);
        if (id === "") {
          b = await this.takeBackup();
          id = randomBytes(16).toString("hex");
          while (this.backups.size >= MAX_KEPT_BACKUPS)
            this.backups.delete(this.backups.keys().next().value!);
          this.backups.set(id, b);
        } else if (!b) {
          throw new CallError(
            status.NOT_FOUND,
            `backup ${id} is not kept on this node (it expired, or another node answered): start again`,
            ErrorReason.ERROR_REASON_NOT_FOUND,
            "backup_id",
          );
        }
        if (req.offset > BigInt(b.data.byteLength)) {
          throw new CallError(
            status.OUT_OF_RANGE,
            `offset ${req.offset} is past the backup's ${b.data.byteLength} bytes`,
            ErrorReason.ERROR_REASON_INVALID_ARGUMENT,
            "offset",
          );
        }
        const from = Number(req.offset);
        return {
          state: b.data.subarray(from, from + (this.d.backupPartBytes ?? BACKUP_PART_BYTES)),
          appliedIndex: b.appliedIndex,
          clusterIdentity: b.identity,
          backupId: id,
          totalBytes: BigInt(b.data.byteLength),
          sha256: b.sha256,
        };
      }),

      returnSegment: unary(async (req) => {
        const fence = req.fence ?? { term: 0n, index: 0n };
        const out = await this.command(
          {
            type: "ReturnSegment",
            name: req.sequence,
            dc: req.dc,
            start: req.start,
            end: req.end,
            fence: { term: Number(fence.term), index: Number(fence.index) },
            returnToken: req.returnToken,
            requestId: req.requestId,
          },
          (d) => (d.type === "ReturnSegment" ? d : undefined),
        );
        return {
          accepted: out.accepted,
          wasted: out.accepted ? 0n : req.end > req.start ? req.end - req.start : 0n,
        };
      }),

      clusterStatus: unary(() => {
        const st = this.d.raft.status();
        const lead = st.softState.lead;
        return {
          clusterId: this.d.clusterId,
          leaderId: BigInt(lead),
          leaderAddress: lead === 0 ? "" : this.d.addressOf(lead),
          nodeId: BigInt(this.d.nodeId),
          term: BigInt(st.hardState.term),
          commit: BigInt(st.hardState.commit),
          applied: BigInt(st.applied),
          lastIndex: BigInt(st.lastIndex),
          members: this.members(),
          clusterIdentity: this.d.app().state.identity,
          restoreHold: this.d.app().state.onHold,
        };
      }),

      addMember: unary(async (req) => {
        const id = nodeIdOf(req.id, "id");
        if (!/^[^\s:]+:\d{1,5}$/.test(req.address)) {
          throw new CallError(
            status.INVALID_ARGUMENT,
            "address must be host:port",
            ErrorReason.ERROR_REASON_INVALID_ARGUMENT,
            "address",
          );
        }
        // The address first, so every node can reach the member once the change commits.
        const r = await this.propose(encodeMemberAddress(id, req.address));
        if (!r.ok)
          throw new CallError(status.INVALID_ARGUMENT, r.message, ErrorReason.ERROR_REASON_INVALID_ARGUMENT);
        const members = await this.changeMembership({
          type: req.asLearner ? ConfChangeType.AddLearner : ConfChangeType.AddVoter,
          nodeId: id,
        });
        return { members };
      }),

      removeMember: unary(async (req) => ({
        members: await this.changeMembership({ type: ConfChangeType.Remove, nodeId: nodeIdOf(req.id, "id") }),
      })),

      promoteMember: unary(async (req) => {
        const id = nodeIdOf(req.id, "id");
        const st = this.d.raft.status();
        if (!st.confState.learners.includes(id)) {
          throw new CallError(
            status.FAILED_PRECONDITION,
            `node ${id} is not a learner`,
            ErrorReason.ERROR_REASON_UNSAFE_MEMBERSHIP_CHANGE,
            "id",
          );
        }
        const pr = st.progress.get(id);
        if (!pr || st.lastIndex - pr.match > 1000) {
          throw new CallError(
            status.FAILED_PRECONDITION,
            `learner ${id} is too far behind to vote; wait until it catches up`,
            ErrorReason.ERROR_REASON_LEARNER_BEHIND,
            "id",
          );
        }
        return { members: await this.changeMembership({ type: ConfChangeType.PromoteLearner, nodeId: id }) };
      }),

      transferLeader: unary(async (req) => {
        const to = nodeIdOf(req.to, "to");
        if (!this.d.raft.isLeader()) throw this.notLeader(this.d.raft.leader());
        if (!this.d.raft.status().confState.voters.includes(to)) {
          throw new CallError(
            status.FAILED_PRECONDITION,
            `node ${to} is not a voter`,
            ErrorReason.ERROR_REASON_UNSAFE_MEMBERSHIP_CHANGE,
            "to",
          );
        }
        this.d.raft.transferLeader(to);
        for (let i = 0; i < 100 && this.d.raft.leader() !== to; i++)
          await new Promise((r) => setTimeout(r, 50));
        const st = this.d.raft.status();
        if (st.softState.lead !== to)
          throw new CallError(
            status.UNAVAILABLE,
            `leadership did not move to node ${to} in time`,
            ErrorReason.ERROR_REASON_UNSPECIFIED,
          );
        return { leaderId: BigInt(to), term: BigInt(st.hardState.term) };
      }),
    };
  }

  private async readBarrier(): Promise<void> {
    try {
      await this.d.raft.readBarrier();
    } catch (e) {
      throw this.mapRaftError(e);
    }
  }

  /** The sequence's record as of a linearizable read (undefined if there is none). */
  private async current(name: string): Promise<SequenceRecord | undefined> {
    await this.readBarrier();
    return this.d.app().state.get(name);
  }
}

const expected = (rev: bigint): { expectedRevision?: bigint } =>
  rev === 0n ? {} : { expectedRevision: rev };
