// The client's own check that the ledger has not forgotten what it granted. Every Lease is a
// fresh ledger grant above every earlier grant of its (sequence, datacenter), so the ranges one
// client receives from a datacenter only go up, and they all come from one ledger cluster. A range
// that breaks either rule comes from a ledger that lost its data or was restored from an old
// backup, through an edge that does not know it (a new edge, or one whose journal was lost): using
// it could hand out ids this client already handed out. Kept for the client's life, in memory.
import { DispenserError } from "./errors.js";

export class GrantCheck {
  private identity: string | undefined;
  /** Per datacenter, the highest id of the ranges received (at most MAX_DATACENTERS entries). */
  private readonly highest = new Map<number, bigint>();

  /** Throws ledger-forgot, changing nothing, when the range must not be used. */
  check(r: {
    readonly identity: string;
    readonly dc: number;
    readonly first: bigint;
    readonly last: bigint;
  }): void {
    if (r.identity !== "" && this.identity !== undefined && r.identity !== this.identity) {
      throw new DispenserError(
        "ledger-forgot",
        `the ledger answered as cluster ${r.identity}, but this client drew ids from cluster ${this.identity}: ` +
          "a ledger that lost its data and started afresh would hand out ids again",
      );
    }
    const top = this.highest.get(r.dc);
    if (top !== undefined && r.first <= top) {
      throw new DispenserError(
        "ledger-forgot",
        `datacenter ${r.dc} leased a range from ${r.first} on, but this client already had ids up to ${top} ` +
          "from it: the ledger forgot grants (restored from an old backup?); raise the sequence's marks",
      );
    }
    if (r.identity !== "") this.identity = r.identity;
    this.highest.set(r.dc, r.last);
  }
}
