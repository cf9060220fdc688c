// One leased range of a DC's counter space, [start, end), issued from the bottom up.
import type { SegmentGrant } from "../ledger/ledger-port.js";

export class Segment {
  /** The next counter value to issue. */
  next: bigint;
  /** When its first id was issued (for the draw rate); undefined before. */
  firstUseMs: number | undefined;
  /** Once `next` reaches this counter value, the next segment is due (a share of the size used). */
  readonly prefetchMark: bigint;

  constructor(
    readonly grant: SegmentGrant,
    prefetchAt: number,
  ) {
    this.next = grant.start;
    this.prefetchMark = grant.start + BigInt(Math.ceil(Number(grant.end - grant.start) * prefetchAt));
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
}
