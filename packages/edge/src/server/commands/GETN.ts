// GETN <name> <count>: a batch of ids of one sequence.
import { checkSequenceName, parseCount } from "../../issuing/names.js";
import { MAX_ISSUE_BATCH } from "@dispenser/proto";
import type { Handler } from "./handler.js";
import { arityError, errorLine, settle } from "./handler.js";

/** GETN <name> <count>: `count` ids of one sequence (1..10,000), all or none. */
export const getn: Handler = (d, args, r) => {
  if (args.length !== 3) return r.error(arityError("getn"));
  try {
    checkSequenceName(args[1]!);
    const n = parseCount(args[2]!, MAX_ISSUE_BATCH);
    return settle(
      d.drawBatch(args[1]!, n).then(({ drawn, map }) => {
        if (Array.isArray(drawn)) {
          r.array(drawn.length);
          for (const id of drawn) r.bulk(map.text(id));
          return;
        }
        r.array(drawn.count);
        for (let i = 0, id = drawn.first; i < drawn.count; i++, id += drawn.step) r.bulk(map.text(id));
      }),
      r,
    );
  } catch (e) {
    r.error(errorLine(e));
  }
};
