// PING [message].
import type { Handler } from "./handler.js";
import { arityError } from "./handler.js";

export const ping: Handler = (_d, args, w) => {
  if (args.length > 2) return w.error(arityError("ping"));
  if (args.length === 2) w.bulkString(args[1]!);
  else w.simpleString("PONG");
};
