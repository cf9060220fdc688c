// AUTH [user] <password>, and the check HELLO shares. A failed AUTH answers late: when the window
// it opens for its user from the client's address closes (50 ms doubling to 5 s; while it is open,
// that user's passwords from that address are not even checked; see auth/login-throttle.ts), or
// per connection without a throttle; the tenth failure on a connection closes it.
import type { ConnState, Handler, ServerInfo } from "./handler.js";
import { arityError } from "./handler.js";

const MAX_AUTH_FAILURES = 10;
const FIRST_DELAY_MS = 50;
const MAX_DELAY_MS = 5_000;

/** Why a login failed: the error line, and whether it was a guess (answered late) or a misuse. */
export interface LoginFailure {
  readonly line: string;
  readonly guess: boolean;
  /** Answer after this long (a window of the throttle), instead of the per-connection delay. */
  readonly afterMs?: number;
}

/** Log `c` in as `user`; a failure is answered with `refuse`. */
export function logIn(
  s: ServerInfo,
  c: ConnState,
  user: string | undefined,
  pw: string,
): LoginFailure | undefined {
  if (s.users === undefined)
    return {
      line: "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
      guess: false,
    };
  const name = user ?? "default";
  const closed = s.throttle?.closedFor(c.remote, name);
  if (closed !== undefined)
    return {
      line: `ERR too many failed logins for user ${name} from this address: not checked, retry later`,
      guess: false,
      afterMs: closed,
    };
  const u = s.users.check(name, pw);
  if (!u)
    return {
      line: "WRONGPASS invalid username-password pair or user is disabled.",
      guess: true,
      ...(s.throttle ? { afterMs: s.throttle.failed(c.remote, name) } : {}),
    };
  c.user = u;
  c.authed = true;
  c.capped = u.idsPerCall !== undefined || u.idsPerSecond !== undefined;
  // Failures are not forgiven by a success: logging in as oneself between guesses at another
  // user's secret must not reset the delay.
  return undefined;
}

/** Answer a failed AUTH: a wrong guess late, and by closing the connection after too many. */
export function refuse(c: ConnState, f: LoginFailure, write: (line: string) => void): Promise<void> | void {
  const line = f.line;
  if (!f.guess && f.afterMs === undefined) return write(line);
  if (f.guess) c.authFailures++;
  const delay = f.afterMs ?? Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** (c.authFailures - 1));
  return new Promise((resolve) =>
    setTimeout(() => {
      write(line);
      if (c.authFailures >= MAX_AUTH_FAILURES) c.quit = true;
      resolve();
    }, delay),
  );
}

export const auth: Handler = (_d, args, w, c, s) => {
  if (args.length !== 2 && args.length !== 3) return w.error(arityError("auth"));
  const err = args.length === 2 ? logIn(s, c, undefined, args[1]!) : logIn(s, c, args[1], args[2]!);
  if (err) return refuse(c, err, (l) => w.error(l));
  w.simpleString("OK");
};
