// CLIENT SETNAME | GETNAME | ID | SETINFO ...: what clients send on connect.
import type { Handler } from "./handler.js";

export const client: Handler = (_d, args, w, c) => {
  const sub = args[1]?.toUpperCase();
  if (sub === "SETNAME" && args.length === 3) {
    c.name = args[2]!;
    return w.simpleString("OK");
  }
  if (sub === "SETINFO" && args.length === 4) return w.simpleString("OK");
  if (sub === "GETNAME" && args.length === 2) return c.name ? w.bulkString(c.name) : w.nil();
  if (sub === "ID" && args.length === 2) return w.integer(c.id);
  w.error(`ERR unknown subcommand or wrong number of arguments for '${args[1] ?? ""}'. Try CLIENT HELP.`);
};
