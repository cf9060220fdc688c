// GETN <name> <count>: a batch of ids of one sequence.
import { checkSequenceName, parseCount } from "../../issuing/names.js";
import { MAX_ISSUE_BATCH } from "@dispenser/proto";
import type { Handler } from "./handler.js";
import { arityError, errorLine, settle, writeId } from "./handler.js";

/** GETN <name> <count>: `count` ids of one sequence (1..10,000), all or none. */
export const getn: Handler = (d, args, w) => {
  if (args.length !== 3) return w.error(arityError("getn"));
  try {
    checkSequenceName(args[1]!);
    const n = parseCount(args[2]!, MAX_ISSUE_BATCH);
    return settle(
      d.drawBatch(args[1]!, n).then(({ drawn, map }) => {
        if (Array.isArray(drawn)) {
          w.arrayHeader(drawn.length);
          for (const id of drawn) writeId(w, id, map);
          return;
        }
        w.arrayHeader(drawn.count);
        for (let i = 0, id = drawn.first; i < drawn.count; i++, id += drawn.step) writeId(w, id, map);
      }),
      w,
    );
  } catch (e) {
    w.error(errorLine(e));
  }
};
