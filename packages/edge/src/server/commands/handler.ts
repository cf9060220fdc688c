// What every RESP command handler is: its arguments, the connection's state and the server's,
// and the reply it writes straight into the connection's output buffer, synchronously or when its promise settles (the server keeps replies in
// request order either way). Arguments are latin1 strings: one char per byte, so binary payloads
// (ECHO) round-trip.
import { EdgeError } from "../../errors.js";
import type { Dispenser } from "../../issuing/dispenser.js";
import type { DcStats } from "../../redis/index.js";
import type { User, Users } from "../../auth/users.js";
import type { IdMap } from "../../issuing/id-map.js";
import type { LoginThrottle } from "../../auth/login-throttle.js";
import type { ReplyWriter } from "../../resp/index.js";

export interface ConnState {
  proto: 2 | 3;
  /** No users are configured, or `user` is set. */
  authed: boolean;
  /** Who AUTHed on this connection (undefined: nobody yet, or no users configured). */
  user: User | undefined;
  /** The user has caps on its draws: every draw is counted against them (no GET fast path). */
  capped: boolean;
  /** Failed AUTHs so far: each waits longer before its answer, and too many close the connection. */
  authFailures: number;
  /** The client's address, for the login throttle. */
  readonly remote: string | undefined;
  name: string;
  readonly id: number;
  quit: boolean;
  /** The last sequence name that passed checkSequenceName: a repeated GET skips the check. */
  checkedName: string;
}

export interface ServerInfo {
  readonly version: string;
  /** Who may connect, with what role; undefined: anyone, as an admin (the dev mode). */
  readonly users: Users | undefined;
  readonly host: string;
  readonly port: number;
  readonly startedAtMs: number;
  readonly connections: () => number;
  /** Slows down failed logins per client address, across connections and protocols. */
  readonly throttle?: LoginThrottle;
  /** DC-wide counts of a sequence from the Redis plane, or why they are not available. */
  readonly dcStats?: (name: string) => Promise<DcStats | string>;
}

export type Handler = (
  d: Dispenser,
  args: readonly string[],
  w: ReplyWriter,
  c: ConnState,
  s: ServerInfo,
) => void | Promise<void>;

export function arityError(cmd: string): string {
  return `ERR wrong number of arguments for '${cmd.toLowerCase()}' command`;
}

/** The error line of a failed draw or admin call: a code Redis clients show as-is. */
export function errorLine(e: unknown): string {
  if (!(e instanceof EdgeError)) return `ERR internal error: ${e instanceof Error ? e.message : String(e)}`;
  const prefix: Record<EdgeError["code"], string> = {
    "invalid-argument": "ERR",
    "not-found": "ERR",
    "already-exists": "ERR",
    exhausted: "EXHAUSTED",
    overloaded: "BUSY",
    unavailable: "UNAVAILABLE",
    deadline: "TIMEOUT",
    "failed-precondition": "ERR",
    aborted: "ERR",
    unauthenticated: "NOAUTH",
    "permission-denied": "NOPERM",
    internal: "ERR",
  };
  return `${prefix[e.code]} ${e.message}`;
}

/** Write the error line of a failed promise. */
export function settle(p: Promise<void>, w: ReplyWriter): Promise<void> {
  return p.catch((e: unknown) => w.error(errorLine(e)));
}

/** An id as a bulk string: its text under `map` (digits written directly when unpadded). */
export function writeId(w: ReplyWriter, id: bigint, map: IdMap): void {
  if (map.width === 0) w.id(id);
  else w.bulkString(map.text(id));
}
