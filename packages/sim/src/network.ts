import type { NodeId } from "@dispenser/raft";
import type { Prng } from "@dispenser/raft";

export interface NetworkFaults {
  /** Probability a message is lost. */
  dropRate: number;
  /** Probability a message is delivered twice. */
  dupRate: number;
  /** Delivery delay bounds in time units (uniform); a wide range reorders messages. */
  delayMin: number;
  delayMax: number;
}

export const CALM: NetworkFaults = { dropRate: 0, dupRate: 0, delayMin: 1, delayMax: 3 };

/**
 * Links between nodes, each of which can be blocked in one direction. Decides the fate of each
 * message: dropped, or delivered after a delay (perhaps twice).
 */
export class Network {
  private readonly blocked = new Set<string>();
  faults: NetworkFaults = CALM;
  sent = 0;
  dropped = 0;

  constructor(private readonly rng: Prng) {}

  private key(from: NodeId, to: NodeId): string {
    return `${from}>${to}`;
  }

  block(from: NodeId, to: NodeId): void {
    this.blocked.add(this.key(from, to));
  }

  unblock(from: NodeId, to: NodeId): void {
    this.blocked.delete(this.key(from, to));
  }

  isBlocked(from: NodeId, to: NodeId): boolean {
    return this.blocked.has(this.key(from, to));
  }

  blockedLinks(): string[] {
    return [...this.blocked].sort();
  }

  healAll(): void {
    this.blocked.clear();
  }

  /** Delivery delays for one message: empty when it is lost. */
  fate(from: NodeId, to: NodeId): number[] {
    this.sent++;
    const f = this.faults;
    if (this.isBlocked(from, to) || this.rng.chance(f.dropRate)) {
      this.dropped++;
      return [];
    }
    const d = (): number => this.rng.range(f.delayMin, f.delayMax);
    return this.rng.chance(f.dupRate) ? [d(), d()] : [d()];
  }
}
