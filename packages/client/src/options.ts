// The client's options: every one documented with its unit and default, all validated here, once,
// before anything connects.
import type { ChannelCredentials, ChannelOptions } from "@grpc/grpc-js";
import { credentials } from "@grpc/grpc-js";
import { MAX_SEGMENT_SIZE, SEQUENCE_NAME_PATTERN } from "@dispenser/domain";
import { DispenserError } from "./errors.js";

/**
 * How ids reach the application.
 * - `buffered` (default): ranges are leased through the edge's Lease call and handed out from a
 *   local buffer. Ids only grow within the client while it talks to one edge. Type 1 sequences
 *   and orderings `dc` and `global` cannot be leased (the edge answers FAILED_PRECONDITION); the
 *   client then buffers IssueBatch batches instead. Buffered ids of a `dc` or `global` sequence
 *   lose that order: an id handed out later may be smaller than one another client drew earlier.
 * - `direct`: one Issue call per `next()` and IssueBatch calls for `nextBatch()`, nothing buffered.
 *   The choice for orderings `dc` and `global`, where every id must be larger than any id issued
 *   before it in the datacenter (the cluster). `nextSync()` always answers undefined.
 */
export type DrawMode = "buffered" | "direct";

export interface DispenserOptions {
  /** Edge gRPC addresses (host:port), tried in order; the client moves on when one fails. Required. */
  readonly endpoints: readonly string[];
  /** The sequence's name (1..64 characters of A-Z a-z 0-9 _ . : -). Required. */
  readonly sequence: string;
  /** See DrawMode. Default "buffered". */
  readonly mode?: DrawMode;
  /** Deadline of one call to one edge, in ms. Default 3,000. */
  readonly callTimeoutMs?: number;
  /**
   * How long one draw may wait for ids when the buffer is empty, in ms, across retries and
   * failover. Default 10,000. Keep it above callTimeoutMs, so a draw outlives one slow edge.
   */
  readonly drawTimeoutMs?: number;
  /** Draws waiting for ids at once; more are refused at once with code `overloaded`. Default 10,000. */
  readonly maxWaiters?: number;
  /** Ids asked for in the first range. Default 1,000. */
  readonly initialRangeSize?: number;
  /** Smallest range asked for, in ids. Default 16. */
  readonly minRangeSize?: number;
  /**
   * Largest range asked for, in ids. Default 1,000,000; the sequence's limits.max_segment_size caps
   * it too, and IssueBatch batches are capped at 10,000.
   */
  readonly maxRangeSize?: number;
  /**
   * A range is sized to last about this long at the draw rate last measured, in ms. Default 5,000.
   * Longer means fewer Lease calls and more ids lost when the process stops (see close()).
   */
  readonly rangeLifetimeTargetMs?: number;
  /**
   * Share (0 < x <= 1) of the current range used before the next one is leased. Default 0.2: the
   * next range has the remaining 80% of the current one's lifetime to arrive.
   */
  readonly prefetchAt?: number;
  /** Wait after every endpoint failed once, before trying them again, in ms; doubles up to retryBackoffMaxMs. Default 25. */
  readonly retryBackoffMs?: number;
  /** Longest wait between rounds over the endpoints, in ms. Default 500. */
  readonly retryBackoffMaxMs?: number;
  /**
   * `user:secret` of a user in the edge's --users file, sent with every call as
   * `authorization: Bearer <token>`. Default: none. credentialsFromEnv() reads it from
   * DISPENSER_TOKEN or DISPENSER_TOKEN_FILE.
   */
  readonly token?: string;
  /**
   * TLS to the edges: `ca` their CA certificate (PEM; default the system's roots), `cert` and `key`
   * a client certificate for an edge with --tls-client-ca. Default: plaintext. Not with `credentials`.
   */
  readonly tls?: { readonly ca?: Buffer; readonly cert?: Buffer; readonly key?: Buffer };
  /** Channel credentials, for what `tls` does not cover. Default: insecure (plaintext). */
  readonly credentials?: ChannelCredentials;
  /**
   * Send the token in plaintext to edges beyond loopback (where anyone on the path reads it).
   * Default false: a token without `tls` or `credentials` is refused unless every endpoint is on
   * this machine.
   */
  readonly allowPlaintextToken?: boolean;
  /** Extra grpc-js channel options, merged over the client's own. */
  readonly channelOptions?: ChannelOptions;
}

export interface ResolvedOptions {
  readonly endpoints: readonly string[];
  readonly sequence: string;
  readonly mode: DrawMode;
  readonly callTimeoutMs: number;
  readonly drawTimeoutMs: number;
  readonly maxWaiters: number;
  readonly initialRangeSize: number;
  readonly minRangeSize: number;
  readonly maxRangeSize: number;
  readonly rangeLifetimeTargetMs: number;
  readonly prefetchAt: number;
  readonly retryBackoffMs: number;
  readonly retryBackoffMaxMs: number;
  readonly credentials: ChannelCredentials;
  /** The authorization header every call carries, or undefined. */
  readonly authorization: string | undefined;
  readonly channelOptions: ChannelOptions;
}

/** A token's shape: a user name, a colon, the secret; no whitespace (it goes into a header). */
const TOKEN_PATTERN = /^[A-Za-z0-9._-]{1,64}:[\x21-\x7e]{1,1024}$/;

/** The same bound the ledger puts on limits.max_segment_size. */
export const MAX_RANGE_SIZE = Number(MAX_SEGMENT_SIZE);
/** Largest nextBatch() count. */
export const MAX_BATCH = 1_000_000;

const ENDPOINT_PATTERN = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):[0-9]{1,5}$/;

/** Whether host:port stays on this machine. */
function isLoopback(endpoint: string): boolean {
  const host = endpoint.slice(0, endpoint.lastIndexOf(":")).replace(/^\[(.*)\]$/, "$1");
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === "::1" || host === "localhost";
}

function bad(field: string, reason: string): never {
  throw new DispenserError("invalid-argument", `createDispenser: ${reason}`, { field });
}

function int(field: string, v: number | undefined, dflt: number, lo: number, hi: number): number {
  const x = v ?? dflt;
  if (!Number.isSafeInteger(x) || x < lo || x > hi) bad(field, `${field} must be an integer in ${lo}..${hi}`);
  return x;
}

/** Defaults applied and every option checked; throws DispenserError invalid-argument naming the option. */
export function resolveOptions(o: DispenserOptions): ResolvedOptions {
  if (typeof o !== "object" || o === null) bad("options", "options are required");
  const endpoints: unknown = o.endpoints;
  if (!Array.isArray(endpoints) || endpoints.length === 0)
    bad("endpoints", "endpoints must list at least one edge address (host:port)");
  if (endpoints.length > 64) bad("endpoints", "endpoints must list at most 64 addresses");
  for (const e of endpoints as unknown[]) {
    if (typeof e !== "string" || !ENDPOINT_PATTERN.test(e))
      bad("endpoints", `endpoint ${JSON.stringify(e)} is not host:port`);
  }
  if (typeof o.sequence !== "string" || !SEQUENCE_NAME_PATTERN.test(o.sequence))
    bad("sequence", "sequence must be 1..64 characters of A-Z a-z 0-9 _ . : -");
  const mode = o.mode ?? "buffered";
  if (mode !== "buffered" && mode !== "direct") bad("mode", 'mode must be "buffered" or "direct"');

  const callTimeoutMs = int("callTimeoutMs", o.callTimeoutMs, 3_000, 1, 600_000);
  const drawTimeoutMs = int("drawTimeoutMs", o.drawTimeoutMs, 10_000, 1, 3_600_000);
  const maxWaiters = int("maxWaiters", o.maxWaiters, 10_000, 1, 10_000_000);
  const minRangeSize = int("minRangeSize", o.minRangeSize, 16, 1, MAX_RANGE_SIZE);
  const maxRangeSize = int("maxRangeSize", o.maxRangeSize, 1_000_000, minRangeSize, MAX_RANGE_SIZE);
  const initialRangeSize = int(
    "initialRangeSize",
    o.initialRangeSize,
    Math.min(Math.max(1_000, minRangeSize), maxRangeSize),
    minRangeSize,
    maxRangeSize,
  );
  const rangeLifetimeTargetMs = int("rangeLifetimeTargetMs", o.rangeLifetimeTargetMs, 5_000, 1, 3_600_000);
  const prefetchAt = o.prefetchAt ?? 0.2;
  if (typeof prefetchAt !== "number" || !(prefetchAt > 0 && prefetchAt <= 1))
    bad("prefetchAt", "prefetchAt must be a share in (0, 1]");
  const retryBackoffMs = int("retryBackoffMs", o.retryBackoffMs, 25, 0, 60_000);
  const retryBackoffMaxMs = int("retryBackoffMaxMs", o.retryBackoffMaxMs, 500, retryBackoffMs, 600_000);
  if (o.token !== undefined && (typeof o.token !== "string" || !TOKEN_PATTERN.test(o.token)))
    bad("token", "token must be user:secret (printable, no spaces)");
  if (o.tls !== undefined && o.credentials !== undefined) bad("tls", "give tls or credentials, not both");
  if (
    o.token !== undefined &&
    o.tls === undefined &&
    o.credentials === undefined &&
    o.allowPlaintextToken !== true &&
    !(endpoints as string[]).every(isLoopback)
  )
    bad(
      "token",
      "a token to an edge beyond loopback needs tls (or credentials): it would cross the network in the clear",
    );
  const tls = o.tls;
  if (tls !== undefined && (tls.cert === undefined) !== (tls.key === undefined))
    bad("tls", "tls.cert and tls.key go together");

  return {
    endpoints: [...(endpoints as string[])],
    sequence: o.sequence,
    mode,
    callTimeoutMs,
    drawTimeoutMs,
    maxWaiters,
    initialRangeSize,
    minRangeSize,
    maxRangeSize,
    rangeLifetimeTargetMs,
    prefetchAt,
    retryBackoffMs,
    retryBackoffMaxMs,
    credentials:
      o.credentials ??
      (tls
        ? credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null)
        : credentials.createInsecure()),
    authorization: o.token !== undefined ? `Bearer ${o.token}` : undefined,
    channelOptions: o.channelOptions ?? {},
  };
}
