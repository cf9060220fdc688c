// GET <name>: one id, the hot path of the RESP surface.
import { checkSequenceName } from "../../issuing/names.js";
import type { Handler } from "./handler.js";
import { arityError, errorLine, settle } from "./handler.js";

/** GET <name>: one id. Synchronous when the sequence is loaded and buffered (the hot path). */
export const get: Handler = (d, args, r, c) => {
  if (args.length !== 2) return r.error(arityError("get"));
  const name = args[1]!;
  try {
    if (name !== c.checkedName) {
      checkSequenceName(name);
      c.checkedName = name;
    }
    const s = d.sequence(name);
    if (!(s instanceof Promise)) {
      const id = s.issueOne();
      if (typeof id === "bigint") return r.id(id, s.map);
      return settle(
        id.then((v) => r.id(v, s.map)),
        r,
      );
    }
    return settle(
      s.then(async (i) => r.id(await i.issueOne(), i.map)),
      r,
    );
  } catch (e) {
    r.error(errorLine(e));
  }
};
