// PING [message].
import type { Handler } from "./handler.js";
import { arityError } from "./handler.js";

export const ping: Handler = (_d, args, r) => {
  if (args.length > 2) return r.error(arityError("ping"));
  if (args.length === 2) r.bulk(args[1]!);
  else r.simple("PONG");
};
