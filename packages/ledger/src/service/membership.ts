// Membership and leadership: the cluster's status, adding, removing and promoting members, and
// moving the leader. Changes go through Raft one at a time and answer once in force.
import type { LedgerServer, Member } from "@dispenser/proto";
import { ErrorReason, MemberRole, MemberState, ProgressState } from "@dispenser/proto";
import type { NodeId } from "@dispenser/raft";
import { ConfChangeType } from "@dispenser/raft";
import { status } from "@grpc/grpc-js";
import { encodeMemberAddress, MAX_MEMBER_ADDRESS_CHARS } from "../ledger-app.js";
import { CallError, nodeIdOf } from "./common.js";
import type { LedgerService, Unary } from "./ledger-service.js";

export function membershipHandlers(
  s: LedgerService,
  unary: Unary,
): Pick<LedgerServer, "clusterStatus" | "addMember" | "removeMember" | "promoteMember" | "transferLeader"> {
  return {
    clusterStatus: unary(() => {
      const st = s.d.raft.status();
      const lead = st.softState.lead;
      return {
        clusterId: s.d.clusterId,
        leaderId: BigInt(lead),
        leaderAddress: lead === 0 ? "" : s.d.addressOf(lead),
        nodeId: BigInt(s.d.nodeId),
        term: BigInt(st.hardState.term),
        commit: BigInt(st.hardState.commit),
        applied: BigInt(st.applied),
        lastIndex: BigInt(st.lastIndex),
        members: members(s),
        clusterIdentity: s.d.app().state.identity,
        restoreHold: s.d.app().state.onHold,
      };
    }),

    addMember: unary(async (req) => {
      const id = nodeIdOf(req.id, "id");
      if (req.address.length > MAX_MEMBER_ADDRESS_CHARS || !/^[^\s:]+:\d{1,5}$/.test(req.address)) {
        throw new CallError(
          status.INVALID_ARGUMENT,
          `address must be host:port, at most ${MAX_MEMBER_ADDRESS_CHARS} characters`,
          ErrorReason.ERROR_REASON_INVALID_ARGUMENT,
          "address",
        );
      }
      if (
        req.peerAddress !== "" &&
        (req.peerAddress.length > MAX_MEMBER_ADDRESS_CHARS || !/^[^\s:]+:\d{1,5}$/.test(req.peerAddress))
      ) {
        throw new CallError(
          status.INVALID_ARGUMENT,
          "peer_address must be host:port (or empty: the same as address)",
          ErrorReason.ERROR_REASON_INVALID_ARGUMENT,
          "peer_address",
        );
      }
      if (req.peerAddress === "" && s.d.peerPortsApart === true) {
        throw new CallError(
          status.INVALID_ARGUMENT,
          "this cluster serves Raft on ports of their own: give the new member's peer_address (its --peer-listen)",
          ErrorReason.ERROR_REASON_INVALID_ARGUMENT,
          "peer_address",
        );
      }
      // The addresses first, so every node can reach the member once the change commits.
      const r = await s.propose(encodeMemberAddress(id, req.address, req.peerAddress || undefined));
      if (!r.ok)
        throw new CallError(status.INVALID_ARGUMENT, r.message, ErrorReason.ERROR_REASON_INVALID_ARGUMENT);
      const members = await s.changeMembership({
        type: req.asLearner ? ConfChangeType.AddLearner : ConfChangeType.AddVoter,
        nodeId: id,
      });
      return { members };
    }),

    removeMember: unary(async (req) => ({
      members: await s.changeMembership({ type: ConfChangeType.Remove, nodeId: nodeIdOf(req.id, "id") }),
    })),

    promoteMember: unary(async (req) => {
      const id = nodeIdOf(req.id, "id");
      const st = s.d.raft.status();
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
      return { members: await s.changeMembership({ type: ConfChangeType.PromoteLearner, nodeId: id }) };
    }),

    transferLeader: unary(async (req) => {
      const to = nodeIdOf(req.to, "to");
      if (!s.d.raft.isLeader()) throw s.notLeader(s.d.raft.leader());
      if (!s.d.raft.status().confState.voters.includes(to)) {
        throw new CallError(
          status.FAILED_PRECONDITION,
          `node ${to} is not a voter`,
          ErrorReason.ERROR_REASON_UNSAFE_MEMBERSHIP_CHANGE,
          "to",
        );
      }
      s.d.raft.transferLeader(to);
      for (let i = 0; i < 100 && s.d.raft.leader() !== to; i++) await new Promise((r) => setTimeout(r, 50));
      const st = s.d.raft.status();
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

export function members(s: LedgerService): Member[] {
  const st = s.d.raft.status();
  const lead = st.softState.lead;
  const out: Member[] = [];
  const add = (id: NodeId, role: MemberRole): void => {
    const pr = st.progress.get(id);
    const self = id === s.d.nodeId;
    out.push({
      id: BigInt(id),
      address: s.d.addressOf(id),
      peerAddress: s.d.peerAddressOf(id),
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
