// What an edge remembers of the ledger it drew from, to refuse a ledger that forgot: the cluster's
// identity (created once by its first leader) and, per (sequence, counter space), the end of the
// highest range granted to this edge. A ledger whose volumes were all lost and that was started
// afresh has another identity; one restored from an old backup grants below what this edge already
// held. Either would hand out ids again, so their grants are refused, loudly, and never issued.
//
// A grant is compared with the mark as it stood when the lease was asked for: two leases in flight
// at once may be answered in either order, and the lower one is no regression.
import { EdgeError } from "../errors.js";

/** Marks kept at most; the edge serves at most as many sequences. */
const MAX_MARKS = 100_000;

export type GuardRefusal = "identity" | "below-mark";

export interface GuardState {
  readonly identity: string | undefined;
  readonly marks: ReadonlyMap<string, bigint>;
}

export class GrantGuard {
  private identityValue: string | undefined;
  private readonly marksByKey: Map<string, bigint>;

  constructor(
    initial: GuardState = { identity: undefined, marks: new Map() },
    private readonly onRefused?: (name: string, reason: GuardRefusal, message: string) => void,
  ) {
    this.identityValue = initial.identity;
    this.marksByKey = new Map(initial.marks);
  }

  get state(): GuardState {
    return { identity: this.identityValue, marks: this.marksByKey };
  }

  /** The end of the highest range granted here in `name`'s counter space `dc` (0 before any). */
  markOf(name: string, dc: number): bigint {
    return this.marksByKey.get(key(name, dc)) ?? 0n;
  }

  /**
   * Accepts a grant, or throws EdgeError (nothing of it may be issued). `markAtAsk` is markOf()
   * when the lease was asked for. An empty identity (a ledger that does not send one) is not
   * checked.
   */
  admit(
    name: string,
    dc: number,
    g: { start: bigint; end: bigint; identity: string },
    markAtAsk: bigint,
  ): void {
    if (g.identity !== "") {
      if (this.identityValue !== undefined && this.identityValue !== g.identity) {
        this.refuse(
          name,
          "identity",
          `the ledger answered as cluster ${g.identity}, but this edge has drawn ids from cluster ` +
            `${this.identityValue}: a ledger that lost its data and started afresh would grant ids ` +
            `again, so its grants are refused (restore it from a backup and raise its marks, or ` +
            `point this edge at the right cluster)`,
        );
      }
      this.identityValue = g.identity;
    }
    if (g.start < markAtAsk) {
      this.refuse(
        name,
        "below-mark",
        `the ledger granted [${g.start}, ${g.end}) of "${name}" dc ${dc}, below ${markAtAsk}, the end of ` +
          `what it had already granted this edge: it has lost grants (an old backup restored?); ` +
          `refused until its mark is raised (dispenser seq raise-mark)`,
      );
    }
    const k = key(name, dc);
    if ((this.marksByKey.get(k) ?? 0n) < g.end) {
      if (!this.marksByKey.has(k) && this.marksByKey.size >= MAX_MARKS) {
        const oldest = this.marksByKey.keys().next();
        if (!oldest.done) this.marksByKey.delete(oldest.value);
      }
      this.marksByKey.set(k, g.end);
    }
  }

  /** The ledger took back [start, ...) of this edge's top-most grant: the mark goes down with it. */
  returned(name: string, dc: number, start: bigint): void {
    const k = key(name, dc);
    const m = this.marksByKey.get(k);
    if (m !== undefined && start < m) this.marksByKey.set(k, start);
  }

  private refuse(name: string, reason: GuardRefusal, message: string): never {
    this.onRefused?.(name, reason, message);
    throw new EdgeError("failed-precondition", message);
  }
}

const key = (name: string, dc: number): string => `${name}/${dc}`;
