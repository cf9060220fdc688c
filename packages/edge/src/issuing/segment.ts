// One leased range of a DC's counter space, [start, end), issued from the bottom up.
import type { SegmentGrant } from "../ledger/ledger-port.js";

export class Segment {
  /** The next counter value to issue. */
  next: bigint;
  /** When its first id was issued (for the draw rate); undefined before. */
  firstUseMs: number | undefined;

  constructor(readonly grant: SegmentGrant) {
    this.next = grant.start;
  }

  get start(): bigint {
    return this.grant.start;
  }

  get end(): bigint {
    return this.grant.end;
  }

  get size(): bigint {
    return this.grant.end - this.grant.start;
  }

  get left(): bigint {
    return this.grant.end - this.next;
  }

  /** Share of the segment already issued, 0..1. */
  get usedShare(): number {
    return Number(this.next - this.grant.start) / Number(this.size);
  }
}
