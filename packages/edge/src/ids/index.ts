// Id math of the edge: the keyed permutation behind type 1 ids, and the text form of ids.
export {
  PERMUTATION_DOMAIN_MAX,
  PERMUTATION_KEY_BYTES_MIN,
  permutationKeyFor,
  SlotPermutation,
} from "./permutation.js";
export type { DateFormat, FormatOptionError, FormattedParse, IdFormatOptions } from "./format.js";
export {
  DATE_FORMATS,
  ID_DIGITS_MAX,
  IdFormat,
  idToDecimal,
  PREFIX_PATTERN,
  validateIdFormatOptions,
} from "./format.js";
