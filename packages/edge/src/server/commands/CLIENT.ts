// CLIENT SETNAME | GETNAME | ID | SETINFO ...: what clients send on connect.
import type { Handler } from "./handler.js";

export const client: Handler = (_d, args, r, c) => {
  const sub = args[1]?.toUpperCase();
  if (sub === "SETNAME" && args.length === 3) {
    c.name = args[2]!;
    return r.ok();
  }
  if (sub === "SETINFO" && args.length === 4) return r.ok();
  if (sub === "GETNAME" && args.length === 2) return c.name ? r.bulk(c.name) : r.nil();
  if (sub === "ID" && args.length === 2) return r.int(c.id);
  r.error(`ERR unknown subcommand or wrong number of arguments for '${args[1] ?? ""}'. Try CLIENT HELP.`);
};
