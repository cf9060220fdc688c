// SELECT <db>: only database 0 exists.
import type { Handler } from "./handler.js";
import { arityError } from "./handler.js";

export const select: Handler = (_d, args, w) => {
  if (args.length !== 2) return w.error(arityError("select"));
  if (args[1] === "0") return w.simpleString("OK");
  w.error("ERR DB index is out of range");
};
