// What the SDK tells its users about a sequence, a buffer and an id.

/** What the client knows of its sequence (from the edge's DescribeSequence, once). */
export interface SequenceInfo {
  readonly name: string;
  /** 1 fixed-length random, 2 fixed-length increasing, 3 increasing with a step. */
  readonly type: 1 | 2 | 3;
  /** Digits of every id for types 1 and 2; 0 for type 3. */
  readonly length: number;
  readonly ordering: "edge" | "dc" | "global";
  /** Largest range one Lease may ask for (the sequence's limits.max_segment_size). */
  readonly maxSegmentSize: bigint;
}

/** The call that fills the buffer: Lease (types 2, 3) or IssueBatch (type 1, ordering global). */
export type BufferSource = "lease" | "issue-batch";

export interface DispenserStats {
  /** Ids handed to the application. */
  readonly issued: bigint;
  /** Ids received from edges: leased ranges, issued batches, single ids in direct mode. */
  readonly leased: bigint;
  /**
   * Ids received and never handed out: the buffer discarded by close(), ranges that arrived after
   * it, and ids gathered for a nextBatch() that then failed. They are lost for good.
   */
  readonly wasted: bigint;
  /** Ranges (or batches) received. */
  readonly ranges: number;
  /** Ids in the buffer now. */
  readonly runway: bigint;
  /** Ids the next range request asks for. */
  readonly rangeSize: number;
  /** How the buffer is filled; undefined before the first fill and in direct mode. */
  readonly source: BufferSource | undefined;
  /** Draws waiting for ids now. */
  readonly waiting: number;
  /** The edge calls go to first. */
  readonly endpoint: string;
}

/** Where an id came from: its datacenter and that datacenter's counter value. */
export interface ParsedId {
  readonly dc: number;
  readonly counter: bigint;
}
