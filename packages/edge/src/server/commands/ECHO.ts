// ECHO <message>.
import type { Handler } from "./handler.js";
import { arityError } from "./handler.js";

export const echo: Handler = (_d, args, r) => {
  if (args.length !== 2) return r.error(arityError("echo"));
  r.bulk(args[1]!);
};
