import { committedIndex } from "./progress.js";
import type { Message, NodeId } from "./types.js";

interface PendingRead {
  readonly round: number;
  readonly index: number;
  readonly message: Message;
}

/**
 * Linearizable reads by ReadIndex. Each request is stamped with a leader-generated round number
 * and the commit index at arrival; heartbeats carry the round; a follower's ack of round r also
 * confirms every earlier round (the heartbeat for r was sent after them). A request is served once
 * a quorum of voters acked its round or a later one. Rounds are ours, never the client's ids, so
 * a duplicated or foreign context cannot confirm the wrong request.
 */
export class ReadOnly {
  private nextRound = 1;
  private queue: PendingRead[] = [];
  private readonly acks = new Map<NodeId, number>();

  constructor(private readonly maxPending: number) {}

  /** Queue a read at `index`; returns its round, or undefined when the queue is full. */
  add(index: number, m: Message): number | undefined {
    if (this.queue.length >= this.maxPending) return undefined;
    const round = this.nextRound++;
    this.queue.push({ round, index, message: m });
    return round;
  }

  ack(from: NodeId, round: number): void {
    if (round > (this.acks.get(from) ?? 0)) this.acks.set(from, round);
  }

  /** Record `from`'s ack of `round` and release every request a quorum has now confirmed. */
  ackAndRelease(from: NodeId, round: number, voters: readonly NodeId[]): PendingRead[] {
    if (round >= this.nextRound) return []; // Not a round we issued (stale or corrupt).
    this.ack(from, round);
    const confirmed = committedIndex(voters, (id) => this.acks.get(id) ?? 0);
    let n = 0;
    while (n < this.queue.length && this.queue[n]!.round <= confirmed) n++;
    if (n === 0) return [];
    return this.queue.splice(0, n);
  }

  pending(): number {
    return this.queue.length;
  }

  clear(): void {
    this.queue = [];
    this.acks.clear();
  }
}
