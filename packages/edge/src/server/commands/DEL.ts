// DEL <name> [name ...]: deletes sequences.
import { checkSequenceName } from "../../issuing/names.js";
import { EdgeError } from "../../errors.js";
import type { Handler } from "./handler.js";
import { arityError, settle } from "./handler.js";

/** DEL <name> [name ...]: deletes; replies with how many existed. */
export const del: Handler = (d, args, w) => {
  if (args.length < 2) return w.error(arityError("del"));
  return settle(
    (async () => {
      let n = 0;
      const names = args.slice(1);
      // Every name is checked before any is deleted: a bad one fails the command and deletes none.
      for (const name of names) checkSequenceName(name);
      for (const name of names) {
        try {
          await d.deleteSequence(name);
          n++;
        } catch (e) {
          if (!(e instanceof EdgeError && e.code === "not-found")) throw e;
        }
      }
      w.integer(n);
    })(),
    w,
  );
};
