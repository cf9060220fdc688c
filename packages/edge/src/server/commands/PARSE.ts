// PARSE <name> <id>: the datacenter and counter an id was made from.
import { checkSequenceName, parseIdText } from "../../issuing/names.js";
import type { Handler } from "./handler.js";
import { arityError, settle } from "./handler.js";

/** PARSE <name> <id>: [dc, counter] of an id. */
export const parse: Handler = (d, args, w) => {
  if (args.length !== 3) return w.error(arityError("parse"));
  return settle(
    (async () => {
      checkSequenceName(args[1]!);
      const s = await d.sequence(args[1]!);
      const p = s.map.parse(parseIdText(args[2]!));
      w.arrayHeader(2);
      w.integer(p.dc);
      w.integer(p.counter);
    })(),
    w,
  );
};
