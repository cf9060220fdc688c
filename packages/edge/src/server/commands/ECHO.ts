// ECHO <message>.
import type { Handler } from "./handler.js";
import { arityError } from "./handler.js";

export const echo: Handler = (_d, args, w) => {
  if (args.length !== 2) return w.error(arityError("echo"));
  w.bulkString(args[1]!);
};
