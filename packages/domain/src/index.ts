// The domain model every part shares, with no I/O: the ledger, the edge, the SDK, the CLI and the
// simulator import it; it imports only the wire types.
export {
  DEFAULT_MAX_SEGMENT_SIZE,
  MAX_DATACENTERS,
  MAX_LENGTH,
  MAX_RESERVE_SECONDS,
  MAX_SEGMENT_SIZE,
  SEQUENCE_NAME_PATTERN,
  SEQUENCE_NAME_RULE,
  sequenceNameError,
} from "./limits.js";
export type {
  AutoDisk,
  DefResult,
  FieldError,
  Layout,
  Ordering,
  SequenceChanges,
  SequenceDef,
  SequenceLimits,
  SequenceSpec,
  SequenceType,
} from "./sequence.js";
export {
  AUTO_DISKS,
  IDENTITY_FIELDS,
  LAYOUTS,
  ORDERINGS,
  describeErrors,
  identityDiff,
  normalizeSequenceDef,
  validateChanges,
  validateName,
  validateSequenceDef,
} from "./sequence.js";
export type { ParseResult } from "./space.js";
export {
  INT64_MAX,
  capacity,
  dcPrefixBits,
  idBase,
  idOf,
  idStride,
  parse,
  parseSlot,
  pow10,
  prefixShift,
  slotOf,
  slotSpace,
} from "./space.js";
export { RangeSizer } from "./range-sizer.js";
export {
  AUTO_DISK_FROM_PB,
  AUTO_DISK_TO_PB,
  LAYOUT_FROM_PB,
  LAYOUT_TO_PB,
  ORDERING_FROM_PB,
  ORDERING_TO_PB,
  UnknownValueError,
  onUnknownValue,
  changesFromPb,
  changesToPb,
  fromPbSequence,
  specFromPb,
  specToPb,
  toPbSequence,
} from "./wire.js";
