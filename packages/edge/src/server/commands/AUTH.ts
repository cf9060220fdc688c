// AUTH [user] <password>, and the password check HELLO shares.
import type { Handler, ServerInfo } from "./handler.js";
import { arityError } from "./handler.js";

export function checkPassword(s: ServerInfo, user: string | undefined, pw: string): string | undefined {
  if (s.password === undefined)
    return "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?";
  if ((user === undefined || user === "default") && pw === s.password) return undefined;
  return "WRONGPASS invalid username-password pair or user is disabled.";
}

export const auth: Handler = (_d, args, w, c, s) => {
  if (args.length !== 2 && args.length !== 3) return w.error(arityError("auth"));
  const err = args.length === 2 ? checkPassword(s, undefined, args[1]!) : checkPassword(s, args[1], args[2]!);
  if (err) return w.error(err);
  c.authed = true;
  w.simpleString("OK");
};
