// MGET <name> [name ...]: one id of each sequence.
import { checkSequenceName } from "../../issuing/names.js";
import type { EdgeError } from "../../errors.js";
import type { Handler } from "./handler.js";
import { arityError, errorLine } from "./handler.js";

/** MGET <name> [name ...]: one id of each; a failed draw is an error element, the rest stand. */
export const mget: Handler = (d, args, w) => {
  if (args.length < 2) return w.error(arityError("mget"));
  const names = args.slice(1);
  return (async () => {
    const out: (string | EdgeError | Error)[] = [];
    for (const name of names) {
      try {
        checkSequenceName(name);
        const s = await d.sequence(name);
        out.push(s.map.text(await s.issueOne()));
      } catch (e) {
        out.push(e instanceof Error ? e : new Error(String(e)));
      }
    }
    w.arrayHeader(out.length);
    for (const v of out) {
      if (typeof v === "string") w.bulkString(v);
      else w.error(errorLine(v));
    }
  })();
};
