// The Redis-protocol commands of the edge, one file each: compatible with number-dispenser's surface
// (HSET creates, GET draws, INFO describes, DEL deletes), plus what real clients send on connect
// (HELLO, CLIENT, AUTH, SELECT, COMMAND, CONFIG GET, CLUSTER).
import { auth } from "./AUTH.js";
import { client } from "./CLIENT.js";
import { cluster } from "./CLUSTER.js";
import { command } from "./COMMAND.js";
import { config } from "./CONFIG.js";
import { del } from "./DEL.js";
import { echo } from "./ECHO.js";
import { get } from "./GET.js";
import { getn } from "./GETN.js";
import type { Handler } from "./handler.js";
import { hello } from "./HELLO.js";
import { hset } from "./HSET.js";
import { info } from "./INFO.js";
import { mget } from "./MGET.js";
import { parse } from "./PARSE.js";
import { ping } from "./PING.js";
import { quit } from "./QUIT.js";
import { select } from "./SELECT.js";
import type { Role } from "../../auth/users.js";

export type { ConnState, Handler, ServerInfo } from "./handler.js";
export { arityError, errorLine } from "./handler.js";
export { get } from "./GET.js";

export const COMMANDS: Readonly<Record<string, Handler>> = {
  GET: get,
  MGET: mget,
  GETN: getn,
  HSET: hset,
  DEL: del,
  INFO: info,
  PARSE: parse,
  PING: ping,
  ECHO: echo,
  QUIT: quit,
  AUTH: auth,
  HELLO: hello,
  CLIENT: client,
  SELECT: select,
  COMMAND: command,
  CONFIG: config,
  CLUSTER: cluster,
};

/** Commands allowed before AUTH when users are configured. */
export const BEFORE_AUTH = new Set(["AUTH", "HELLO", "QUIT"]);

/** The role a command needs (the others need only a login); INFO without a name needs none. */
export const COMMAND_ROLES: Readonly<Record<string, Role>> = {
  GET: "issue",
  MGET: "issue",
  GETN: "issue",
  PARSE: "issue",
  INFO: "issue",
  HSET: "admin",
  DEL: "admin",
};

/** How many ids a draw command asks for (0: not a draw, or a count the handler will refuse). */
export function idsAsked(name: string, args: readonly string[]): number {
  if (name === "GET") return 1;
  if (name === "MGET") return Math.max(0, args.length - 1);
  if (name === "GETN") {
    const n = Number(args[2]);
    return Number.isSafeInteger(n) && n > 0 ? n : 0;
  }
  return 0;
}

export function unknownCommand(args: readonly string[]): string {
  const rest = args
    .slice(1, 4)
    .map((a) => `'${a.slice(0, 64)}'`)
    .join(" ");
  return `ERR unknown command '${(args[0] ?? "").slice(0, 64)}', with args beginning with: ${rest}`;
}
