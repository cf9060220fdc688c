// Id math of the edge: the keyed permutation behind type 1 ids, and the text form of ids.
export {
  MAX_PERMUTATION_DOMAIN,
  MIN_PERMUTATION_KEY_BYTES,
  permutationKeyFor,
  SlotPermutation,
} from "./permutation.js";
export type { DateFormat, FormatOptionError, FormattedParse, IdFormatOptions } from "./format.js";
export {
  DATE_FORMATS,
  MAX_ID_DIGITS,
  IdFormat,
  idToDecimal,
  PREFIX_PATTERN,
  validateIdFormatOptions,
} from "./format.js";
