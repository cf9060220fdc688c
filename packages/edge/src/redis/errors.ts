import type { RedisPlaneErrorCode } from "./types.js";

/**
 * A failed Redis plane call. Only `invalid-argument` is known not to have reached Redis: after any
 * other code the call may have run (a timed-out command can still execute, and ioredis resends
 * unfulfilled commands after a reconnect), so callers must never read an error as "not applied".
 */
export class RedisPlaneError extends Error {
  override readonly name = "RedisPlaneError";

  constructor(
    readonly code: RedisPlaneErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

// Replies that mean "this node cannot serve the slot right now": the cluster is failing over,
// a promoted node is still loading, or a write reached a replica.
const UNAVAILABLE_REPLY = /^(CLUSTERDOWN|TRYAGAIN|LOADING|MASTERDOWN|READONLY|MOVED|ASK)\b/;

/** Maps whatever a call threw to a `RedisPlaneError`, keeping the original as `cause`. */
export function toPlaneError(operation: string, e: unknown): RedisPlaneError {
  if (e instanceof RedisPlaneError) return e;
  const message = e instanceof Error ? e.message : String(e);
  const isReply = e instanceof Error && e.name === "ReplyError";
  let code: RedisPlaneErrorCode;
  if (message === "Command timed out") code = "timeout";
  else if (isReply && message.startsWith("LIMIT ")) code = "limit-exceeded";
  else if (isReply && message.startsWith("CORRUPT ")) code = "bad-reply";
  else if (isReply && UNAVAILABLE_REPLY.test(message)) code = "unavailable";
  else if (isReply) code = "redis-error";
  // Connection closed or refused, slots cache refresh failed, too many redirections.
  else code = "unavailable";
  return new RedisPlaneError(code, `${operation}: ${message}`, { cause: e });
}

/** Runs `f` under a deadline of `ms` and turns any failure into a `RedisPlaneError`. */
export async function withDeadline<T>(operation: string, ms: number, f: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(new RedisPlaneError("timeout", `${operation}: no answer within ${ms} ms (it may still run)`)),
      ms,
    );
  });
  try {
    return await Promise.race([f(), deadline]);
  } catch (e) {
    throw toPlaneError(operation, e);
  } finally {
    clearTimeout(timer);
  }
}
