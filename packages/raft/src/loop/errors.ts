import type { NodeId } from "../types.js";

export class NotLeaderError extends Error {
  constructor(readonly leader: NodeId) {
    super(
      leader === 0
        ? "not the leader, and no leader is known"
        : `not the leader; the leader is node ${leader}`,
    );
    this.name = "NotLeaderError";
  }
}

/** The proposal was not committed as proposed (leadership changed); retrying is safe with the same request id. */
export class ProposalDroppedError extends Error {
  constructor(reason: string) {
    super(`proposal dropped: ${reason}`);
    this.name = "ProposalDroppedError";
  }
}

export class ProposalRejectedError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ProposalRejectedError";
  }
}
