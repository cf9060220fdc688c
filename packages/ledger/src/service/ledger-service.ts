import { randomBytes } from "node:crypto";
import type { LedgerServer, Member } from "@dispenser/proto";
import { ErrorReason, statusError } from "@dispenser/proto";
import type { ConfChange, NodeId } from "@dispenser/raft";
import type { sendUnaryData, ServerUnaryCall } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import type { AppResult, LedgerApp } from "../ledger-app.js";
import { encodeLedgerCommand } from "../ledger-app.js";
import type { RaftServer } from "../raft-server/raft-server.js";
import { NotLeaderError, ProposalDroppedError, ProposalRejectedError } from "../raft-server/raft-server.js";
import type { Command } from "../state/commands.js";
import { validateCommand } from "../state/commands.js";
import type { SequenceRecord } from "../state/ledger-state.js";
import type { KeptBackup } from "./backups.js";
import { backupHandlers } from "./backups.js";
import { catalogHandlers } from "./catalog.js";
import { CallError, STATE_CODES } from "./common.js";
import { leaseHandlers } from "./leases.js";
import { members, membershipHandlers } from "./membership.js";

export interface LedgerServiceDeps {
  clusterId: string;
  nodeId: NodeId;
  raft: RaftServer<AppResult>;
  app: () => LedgerApp;
  /** How clients reach a member: its advertised address. */
  addressOf: (id: NodeId) => string;
  /** How members reach a member's Peer service (its `address` when they share a port). */
  peerAddressOf: (id: NodeId) => string;
  /** This node serves Raft on a port of its own: members added must name theirs. */
  peerPortsApart?: boolean;
  now?: () => number;
  /** Bytes per part of a backup (tests make it small). Default BACKUP_PART_BYTES. */
  backupPartBytes?: number;
}

/** Wraps a handler: its answer, or its CallError as a status (with the leader's address). */
export type Unary = <Req, Res>(
  f: (req: Req) => Promise<Res> | Res,
) => (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void;

/**
 * The public Ledger service. Writes go through Raft on the leader; a follower answers "not
 * leader" with the leader's address (FAILED_PRECONDITION + `dispenser-leader` trailer), which
 * clients follow. Reads are linearizable on any node (ReadIndex). Bad input is refused before
 * anything is proposed, so it changes nothing.
 */
export class LedgerService {
  readonly now: () => number;
  /** The InitCluster in flight, if any: concurrent first leases share it. */
  private initializing: Promise<void> | undefined;
  /** Backups taken here, by id, until their parts are fetched (bounded, and they expire). */
  readonly backups = new Map<string, KeptBackup>();

  constructor(readonly d: LedgerServiceDeps) {
    this.now = d.now ?? Date.now;
  }

  /**
   * The cluster gets its identity from the first leader that grants anything: one InitCluster
   * with 128 random bits. The first committed wins (the state machine ignores later ones), so two
   * leaders racing cannot give it two.
   */
  async ensureIdentity(): Promise<void> {
    if (this.d.app().state.identity !== "") return;
    this.initializing ??= this.command(
      { type: "InitCluster", identity: randomBytes(16).toString("hex") },
      (d) => (d.type === "InitCluster" ? d : undefined),
    )
      .then(() => undefined)
      .finally(() => (this.initializing = undefined));
    await this.initializing;
  }

  notLeader(leader: NodeId): CallError {
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
  async propose(data: Uint8Array): Promise<AppResult> {
    if (!this.d.raft.isLeader()) throw this.notLeader(this.d.raft.leader());
    try {
      return await this.d.raft.propose(data);
    } catch (e) {
      throw this.mapRaftError(e);
    }
  }

  mapRaftError(e: unknown): unknown {
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

  async command<T>(
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

  async changeMembership(cc: ConfChange): Promise<Member[]> {
    if (!this.d.raft.isLeader()) throw this.notLeader(this.d.raft.leader());
    try {
      await this.d.raft.proposeConfChange(cc);
    } catch (e) {
      throw this.mapRaftError(e);
    }
    return members(this);
  }

  handlers(): LedgerServer {
    const unary: Unary =
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
      ...catalogHandlers(this, unary),
      ...leaseHandlers(this, unary),
      ...membershipHandlers(this, unary),
      ...backupHandlers(this, unary),
    };
  }

  async readBarrier(): Promise<void> {
    try {
      await this.d.raft.readBarrier();
    } catch (e) {
      throw this.mapRaftError(e);
    }
  }

  /** The sequence's record as of a linearizable read (undefined if there is none). */
  async current(name: string): Promise<SequenceRecord | undefined> {
    await this.readBarrier();
    return this.d.app().state.get(name);
  }
}
