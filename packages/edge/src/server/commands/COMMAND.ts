// COMMAND COUNT | DOCS: what clients ask on connect (DOCS answered empty).
import type { Handler } from "./handler.js";
// A cycle, read only when a command runs: the table lists this handler too.
import { COMMANDS } from "./index.js";

export const command: Handler = (_d, args, w) => {
  const sub = args[1]?.toUpperCase();
  if (sub === "COUNT") return w.integer(Object.keys(COMMANDS).length);
  if (sub === "DOCS" || sub === undefined)
    return w.protocol === 3 && sub === "DOCS" ? w.mapHeader(0) : w.arrayHeader(0);
  w.error(`ERR unknown subcommand '${args[1]}'. Try COMMAND HELP.`);
};
