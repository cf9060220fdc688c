// HSET <name> <field> <value> ...: creates a sequence (number-dispenser's way), fields as the
// sequence definition names them.
import type { SequenceSpec } from "@dispenser/domain";
import {
  AUTO_DISKS,
  INT64_MAX,
  LAYOUTS,
  MAX_DATACENTERS,
  MAX_LENGTH,
  MAX_RESERVE_SECONDS,
  MAX_SEGMENT_SIZE,
  ORDERINGS,
} from "@dispenser/domain";
import { checkSequenceName } from "../../issuing/names.js";
import { EdgeError } from "../../errors.js";
import type { Handler } from "./handler.js";
import { arityError, errorLine, settle } from "./handler.js";

const CREATE_FIELDS = new Set([
  "type",
  "length",
  "starting",
  "step",
  "auto_disk",
  "datacenters",
  "ordering",
  "layout",
  "max_segment_size",
  "reserve_seconds",
]);

/**
 * HSET <name> type <1|2|3> [length N] [starting S] [step K] [auto_disk S] [datacenters D]
 * [ordering edge|dc|global] [layout interleaved|prefix] [max_segment_size M] [reserve_seconds S]:
 * creates the sequence.
 * Replies with the number of fields given, as Redis's HSET does.
 */
export const hset: Handler = (d, args, w) => {
  if (args.length < 4 || args.length % 2 !== 0) return w.error(arityError("hset"));
  try {
    const name = args[1]!;
    checkSequenceName(name);
    const fields = new Map<string, string>();
    for (let i = 2; i < args.length; i += 2) {
      const k = args[i]!.toLowerCase();
      if (!CREATE_FIELDS.has(k)) {
        throw new EdgeError(
          "invalid-argument",
          `unknown field '${k}' (known: ${[...CREATE_FIELDS].join(", ")})`,
          k,
        );
      }
      if (fields.has(k)) throw new EdgeError("invalid-argument", `field '${k}' given twice`, k);
      fields.set(k, args[i + 1]!);
    }
    return settle(
      d.createSequence(specOf(name, fields)).then(() => w.integer(fields.size)),
      w,
    );
  } catch (e) {
    w.error(errorLine(e));
  }
};

function uintField(fields: Map<string, string>, k: string, max: bigint): bigint | undefined {
  const v = fields.get(k);
  if (v === undefined) return undefined;
  if (!/^[0-9]{1,20}$/.test(v) || BigInt(v) > max) {
    throw new EdgeError("invalid-argument", `${k} must be an integer 0..${max}`, k);
  }
  return BigInt(v);
}

function given<K extends string, T>(k: K, v: bigint | undefined, as: (v: bigint) => T): { [P in K]?: T } {
  return (v === undefined ? {} : { [k]: as(v) }) as { [P in K]?: T };
}

function enumField<T extends string>(
  fields: Map<string, string>,
  k: string,
  names: readonly T[],
): T | undefined {
  const v = fields.get(k);
  if (v === undefined) return undefined;
  const name = v.toLowerCase();
  if (!names.includes(name as T))
    throw new EdgeError("invalid-argument", `${k} must be one of ${names.join(", ")}`, k);
  return name as T;
}

/** The fields of an HSET as a spec: only fields left out take their defaults. */
export function specOf(name: string, fields: Map<string, string>): SequenceSpec {
  const typeText = fields.get("type");
  if (typeText !== "1" && typeText !== "2" && typeText !== "3") {
    throw new EdgeError("invalid-argument", "type must be 1, 2 or 3", "type");
  }
  const layout = enumField(fields, "layout", LAYOUTS);
  const ordering = enumField(fields, "ordering", ORDERINGS);
  const autoDisk = enumField(fields, "auto_disk", AUTO_DISKS);
  return {
    name,
    type: Number(typeText),
    // A value given (0 included) is checked as given.
    ...given("length", uintField(fields, "length", BigInt(MAX_LENGTH)), Number),
    ...given("starting", uintField(fields, "starting", INT64_MAX), (v) => v),
    ...given("step", uintField(fields, "step", INT64_MAX), (v) => v),
    ...given("datacenters", uintField(fields, "datacenters", BigInt(MAX_DATACENTERS)), Number),
    ...(layout ? { layout } : {}),
    ...(ordering ? { ordering } : {}),
    ...(autoDisk ? { autoDisk } : {}),
    ...given("limits", uintField(fields, "max_segment_size", MAX_SEGMENT_SIZE), (m) => ({
      maxSegmentSize: m,
    })),
    ...given("reserveSeconds", uintField(fields, "reserve_seconds", BigInt(MAX_RESERVE_SECONDS)), Number),
  };
}
