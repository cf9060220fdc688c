// GET <name>: one id, the hot path of the RESP surface.
import { checkSequenceName } from "../../issuing/names.js";
import type { Handler } from "./handler.js";
import { arityError, errorLine, settle, writeId } from "./handler.js";

/** GET <name>: one id. Synchronous when the sequence is loaded and buffered (the hot path). */
export const get: Handler = (d, args, w, c) => {
  if (args.length !== 2) return w.error(arityError("get"));
  const name = args[1]!;
  try {
    if (name !== c.checkedName) {
      checkSequenceName(name);
      c.checkedName = name;
    }
    const s = d.sequence(name);
    if (!(s instanceof Promise)) {
      const id = s.issueOne();
      if (typeof id === "bigint") return writeId(w, id, s.map);
      return settle(
        id.then((v) => writeId(w, v, s.map)),
        w,
      );
    }
    return settle(
      s.then(async (i) => writeId(w, await i.issueOne(), i.map)),
      w,
    );
  } catch (e) {
    w.error(errorLine(e));
  }
};
