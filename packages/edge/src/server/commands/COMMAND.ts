// COMMAND COUNT | DOCS: what clients ask on connect (DOCS answered empty).
import type { Handler } from "./handler.js";
// A cycle, read only when a command runs: the table lists this handler too.
import { COMMANDS } from "./index.js";

export const command: Handler = (_d, args, r) => {
  const sub = args[1]?.toUpperCase();
  if (sub === "COUNT") return r.int(Object.keys(COMMANDS).length);
  if (sub === "DOCS" || sub === undefined) return r.proto === 3 && sub === "DOCS" ? r.map(0) : r.array(0);
  r.error(`ERR unknown subcommand '${args[1]}'. Try COMMAND HELP.`);
};
