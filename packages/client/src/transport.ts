// Calls to the edges: one channel per endpoint, a deadline on every attempt, and failover. The
// client sticks to the edge that last answered; when it answers UNAVAILABLE, DEADLINE_EXCEEDED or
// OVERLOADED the next endpoint is tried at once, and after a whole round of failures the client
// waits (doubling back-off) before the next round, until the caller's time is up.
import type { DispenserServer } from "@dispenser/proto";
import { DispenserClient } from "@dispenser/proto";
import type { CallOptions, ClientUnaryCall, handleUnaryCall, ServiceError } from "@grpc/grpc-js";
import { Metadata } from "@grpc/grpc-js";
import { DispenserError, fromServiceError, isRetryable } from "./errors.js";
import type { ResolvedOptions } from "./options.js";

type Methods = {
  [K in keyof DispenserServer as string extends K ? never : K]: DispenserServer[K] extends handleUnaryCall<
    infer Req,
    infer Res
  >
    ? { req: Req; res: Res }
    : never;
};
export type EdgeMethod = keyof Methods;
export type RequestOf<M extends EdgeMethod> = Methods[M]["req"];
export type ResponseOf<M extends EdgeMethod> = Methods[M]["res"];

type UnaryFn = (
  req: unknown,
  md: Metadata,
  opts: Partial<CallOptions>,
  cb: (err: ServiceError | null, res: unknown) => void,
) => ClientUnaryCall;

export class EdgeTransport {
  private readonly clients: (DispenserClient | undefined)[];
  private current = 0;
  private readonly inFlight = new Set<ClientUnaryCall>();
  private readonly sleepers = new Set<() => void>();
  private closed = false;
  /** No new attempts; calls in flight finish. */
  private draining = false;

  constructor(private readonly o: ResolvedOptions) {
    this.clients = o.endpoints.map(() => undefined);
  }

  /** The endpoint calls go to first. */
  get endpoint(): string {
    return this.o.endpoints[this.current]!;
  }

  private client(i: number): DispenserClient {
    let c = this.clients[i];
    if (c === undefined) {
      c = new DispenserClient(this.o.endpoints[i]!, this.o.credentials, {
        // Fail fast on a dead edge and come back quickly: failover speed is what callers see.
        "grpc.initial_reconnect_backoff_ms": 100,
        "grpc.max_reconnect_backoff_ms": 1_000,
        "grpc.enable_retries": 0,
        "grpc.enable_channelz": 0, // per-call bookkeeping for a debugging service nobody reads
        ...this.o.channelOptions,
      });
      this.clients[i] = c;
    }
    return c;
  }

  /** One attempt on endpoint `i`, with a deadline of at most callTimeoutMs. */
  private once<M extends EdgeMethod>(
    i: number,
    method: M,
    req: RequestOf<M>,
    deadline: number,
  ): Promise<ResponseOf<M>> {
    const c = this.client(i);
    const f = (c as unknown as Record<string, UnaryFn>)[method as string]!;
    return new Promise<ResponseOf<M>>((resolve, reject) => {
      const md = new Metadata();
      if (this.o.authorization !== undefined) md.set("authorization", this.o.authorization);
      const call = f.call(c, req, md, { deadline }, (err, res) => {
        this.inFlight.delete(call);
        if (err) reject(fromServiceError(err, this.o.endpoints[i]!));
        else resolve(res as ResponseOf<M>);
      });
      this.inFlight.add(call);
    });
  }

  /**
   * `method` on the current edge, failing over to the others on retryable errors until `untilMs`
   * (a performance.now() time). Throws DispenserError: the first non-retryable error, or the last
   * retryable one when time is up. `onRetry` hears every retryable failure.
   */
  async call<M extends EdgeMethod>(
    method: M,
    req: RequestOf<M>,
    untilMs: number,
    onRetry?: (e: DispenserError) => void,
  ): Promise<ResponseOf<M>> {
    const n = this.o.endpoints.length;
    let backoffMs = this.o.retryBackoffMs;
    let failedInRound = 0;
    for (;;) {
      if (this.closed || this.draining) throw new DispenserError("closed", "the client is closed");
      const leftMs = untilMs - performance.now();
      if (leftMs <= 0) throw new DispenserError("deadline", `no answer from any edge in time (${method})`);
      const i = this.current;
      try {
        return await this.once(i, method, req, Date.now() + Math.min(this.o.callTimeoutMs, leftMs));
      } catch (e) {
        if (!(e instanceof DispenserError)) throw e;
        if (this.closed || this.draining) throw new DispenserError("closed", "the client is closed");
        if (!isRetryable(e)) throw e;
        onRetry?.(e);
        if (untilMs - performance.now() <= 0) throw e;
        // Another caller may have moved on already; only advance from the endpoint that failed.
        if (this.current === i) this.current = (i + 1) % n;
        failedInRound++;
        if (failedInRound >= n) {
          failedInRound = 0;
          await this.sleep(Math.min(backoffMs, Math.max(0, untilMs - performance.now())));
          backoffMs = Math.min(Math.max(backoffMs * 2, 1), this.o.retryBackoffMaxMs);
        }
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(t);
        this.sleepers.delete(wake);
        resolve();
      };
      const t = setTimeout(wake, ms);
      this.sleepers.add(wake);
    });
  }

  /** Stops retries and new attempts; calls in flight still get their answer. */
  drain(): void {
    this.draining = true;
    for (const wake of [...this.sleepers]) wake();
  }

  /** Cancels calls in flight, wakes retry waits, and closes every channel. */
  close(): void {
    this.closed = true;
    for (const wake of [...this.sleepers]) wake();
    for (const call of [...this.inFlight]) call.cancel();
    for (const c of this.clients) c?.close();
  }
}
