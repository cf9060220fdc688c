// What an edge remembers of the ledger it drew from, to refuse a ledger that forgot: the cluster's
// identity (created once by its first leader) and, per (sequence, counter space), one past the
// highest counter value this edge has issued (its issued mark; an SDK client's Lease range counts
// as issued whole). A ledger whose volumes were all lost and that was started afresh has another
// identity; one restored from an old backup may grant ranges this edge already issued from. Either
// would hand out ids again, so such grants are refused, loudly, and never issued.
//
// Issued, not granted: a range granted but never issued (a prefetched segment, a returned tail) is
// no loss when granted again, so neither a return nor a restore that only loses unissued ranges
// trips the guard, and an operator raising marks above the highest id issued satisfies it.
import { EdgeError } from "../errors.js";

/** Marks kept at most; the edge serves at most as many sequences. */
const MAX_MARKS = 100_000;
/**
 * After a refusal, leases of that (sequence, dc) fail at once for this long without asking the
 * ledger: every draw would otherwise take (and burn) a range and log an error.
 */
export const REFUSAL_HOLD_MS = 1_000;

export type GuardRefusal = "identity" | "below-mark";

export interface GuardState {
  readonly identity: string | undefined;
  readonly marks: ReadonlyMap<string, bigint>;
}

interface Refusal {
  readonly atMs: number;
  readonly message: string;
}

export class GrantGuard {
  private identityValue: string | undefined;
  private readonly marksByKey: Map<string, bigint>;
  /** The last refusal per key, while it holds. */
  private readonly refusals = new Map<string, Refusal>();

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

  /** The issued mark of `name`'s counter space `dc` as last noted (0 before any). */
  markOf(name: string, dc: number): bigint {
    return this.marksByKey.get(key(name, dc)) ?? 0n;
  }

  /** Counter values below `mark` of `name`/`dc` have been issued: the mark only goes up. */
  noteIssued(name: string, dc: number, mark: bigint): void {
    const k = key(name, dc);
    if ((this.marksByKey.get(k) ?? 0n) >= mark) return;
    if (!this.marksByKey.has(k) && this.marksByKey.size >= MAX_MARKS) {
      const oldest = this.marksByKey.keys().next();
      if (!oldest.done) this.marksByKey.delete(oldest.value);
    }
    this.marksByKey.set(k, mark);
  }

  /**
   * What the DC's other edges remember (kept in its Redis): their ledger identity, taken when this
   * edge has none, and their issued mark of `name`/`dc`. Returns a message when the identities
   * differ (this edge keeps its own; a person must look).
   */
  adoptDc(name: string, dc: number, identity: string, mark: bigint): string | undefined {
    this.noteIssued(name, dc, mark);
    if (identity === "") return undefined;
    if (this.identityValue === undefined) {
      this.identityValue = identity;
      return undefined;
    }
    if (this.identityValue === identity) return undefined;
    return (
      `the datacenter's edges drew "${name}" from ledger cluster ${identity}, this edge from ` +
      `${this.identityValue}: one of them lost its data and started afresh`
    );
  }

  /** Throws the refusal of `name`/`dc` again while it is recent: the caller does not ask the ledger. */
  checkRecent(name: string, dc: number, nowMs: number): void {
    const k = key(name, dc);
    const r = this.refusals.get(k);
    if (r === undefined) return;
    if (nowMs - r.atMs < REFUSAL_HOLD_MS) throw new EdgeError("failed-precondition", r.message);
    this.refusals.delete(k);
  }

  /**
   * Accepts a grant, or throws EdgeError (nothing of it may be issued). `issuedAtAsk` is the
   * issued mark when the lease was asked for (a grant answered later may not start below it). An
   * empty identity (a ledger that does not send one) is not checked.
   */
  admit(
    name: string,
    dc: number,
    g: { start: bigint; end: bigint; identity: string },
    issuedAtAsk: bigint,
    nowMs: number,
  ): void {
    const k = key(name, dc);
    if (g.identity !== "") {
      if (this.identityValue !== undefined && this.identityValue !== g.identity) {
        this.refuse(
          k,
          nowMs,
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
    if (g.start < issuedAtAsk) {
      this.refuse(
        k,
        nowMs,
        name,
        "below-mark",
        `the ledger granted [${g.start}, ${g.end}) of "${name}" dc ${dc}, below ${issuedAtAsk}: this ` +
          `edge has already issued ids from counter ${g.start} on; the ledger lost grants (an old ` +
          `backup restored?), refused until its mark is raised to ${issuedAtAsk} or more ` +
          `(dispenser seq raise-mark)`,
      );
    }
  }

  private refuse(k: string, nowMs: number, name: string, reason: GuardRefusal, message: string): never {
    if (!this.refusals.has(k) && this.refusals.size >= MAX_MARKS) this.refusals.clear();
    this.refusals.set(k, { atMs: nowMs, message });
    this.onRefused?.(name, reason, message);
    throw new EdgeError("failed-precondition", message);
  }
}

const key = (name: string, dc: number): string => `${name}/${dc}`;
