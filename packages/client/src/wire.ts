// The edge's answers in the SDK's terms, checked: a sequence's description, leased ranges and
// issued batches (a malformed answer is an internal error, never ids).
import type { IdRange, IssueBatchResponse, LeaseResponse, SequenceDefinition } from "@dispenser/proto";
import { SequenceType } from "@dispenser/proto";
import { ORDERING_FROM_PB } from "@dispenser/domain";
import { DispenserError } from "./errors.js";
import type { SequenceInfo } from "./types.js";

/** Ids of a progression (`list` undefined) or an explicit list (type 1 batches). */
export interface Chunk {
  readonly start: bigint;
  readonly step: bigint;
  readonly count: number;
  readonly list: readonly bigint[] | undefined;
}

const TYPES: Partial<Record<SequenceType, 1 | 2 | 3>> = {
  [SequenceType.SEQUENCE_TYPE_RANDOM_FIXED_LENGTH]: 1,
  [SequenceType.SEQUENCE_TYPE_INCREASING_FIXED_LENGTH]: 2,
  [SequenceType.SEQUENCE_TYPE_INCREASING]: 3,
};

/** What the client needs of a DescribeSequence answer. */
export function infoOf(s: SequenceDefinition | undefined, name: string): SequenceInfo {
  const type = s ? TYPES[s.type] : undefined;
  const ordering = s ? ORDERING_FROM_PB.get(s.ordering) : undefined;
  if (s === undefined || type === undefined || ordering === undefined)
    throw new DispenserError("internal", `the edge described "${name}" incompletely`);
  return {
    name: s.name,
    type,
    length: s.length ?? 0,
    ordering,
    maxSegmentSize: s.limits?.maxSegmentSize ?? 0n,
  };
}

/** A Lease answer, checked: 1..asked ids with a positive step. */
export function leasedChunk(r: LeaseResponse, asked: number): Chunk {
  return progression(r.range, asked, "Lease");
}

function progression(range: IdRange | undefined, asked: number, what: string): Chunk {
  if (range === undefined || range.count < 1n || range.count > BigInt(asked) || range.step < 1n) {
    throw new DispenserError(
      "internal",
      `${what} answered a malformed range (${range ? `${range.count} ids, step ${range.step}` : "none"}) for ${asked} ids`,
    );
  }
  return { start: range.start, step: range.step, count: Number(range.count), list: undefined };
}

/** An IssueBatch answer, checked: exactly `asked` ids. */
export function batchChunk(r: IssueBatchResponse, asked: number): Chunk {
  const ids = r.ids;
  if (ids?.$case === "range") {
    const c = progression(ids.value, asked, "IssueBatch");
    if (c.count === asked) return c;
  } else if (ids?.$case === "list" && ids.value.values.length === asked) {
    return { start: 0n, step: 1n, count: asked, list: ids.value.values };
  }
  throw new DispenserError(
    "internal",
    `IssueBatch answered a different number of ids than the ${asked} asked`,
  );
}
