// Failed logins slowed down per client address, across connections and protocols: each failure
// from an address answers later than the last (50 ms doubling to 5 s), so guessing a secret by
// opening a fresh connection per guess gains nothing. A success does not forgive earlier failures
// (logging in as oneself between guesses at another user's secret must not reset the delay);
// an address is forgotten after a quiet spell. The table is bounded: past its size the address
// heard from least recently is dropped, so strangers cannot grow it.

export interface LoginThrottleOptions {
  /** Addresses remembered at once. Default 10,000. */
  readonly maxAddresses?: number;
  /** The answer to the first failure waits this long; each later one twice as long. Default 50 ms. */
  readonly firstDelayMs?: number;
  /** Longest wait. Default 5 s. */
  readonly maxDelayMs?: number;
  /** An address without a failure this long starts over. Default 15 minutes. */
  readonly forgetAfterMs?: number;
  readonly now?: () => number;
}

export class LoginThrottle {
  private readonly failures = new Map<string, { count: number; lastMs: number }>();
  private readonly max: number;
  private readonly first: number;
  private readonly cap: number;
  private readonly forget: number;
  private readonly now: () => number;

  constructor(o: LoginThrottleOptions = {}) {
    this.max = o.maxAddresses ?? 10_000;
    this.first = o.firstDelayMs ?? 50;
    this.cap = o.maxDelayMs ?? 5_000;
    this.forget = o.forgetAfterMs ?? 15 * 60_000;
    this.now = o.now ?? Date.now;
  }

  /** A failed login from `address` (undefined: an unknown one, counted together): how long its answer waits. */
  failed(address: string | undefined): number {
    const key = address ?? "?";
    const now = this.now();
    const prev = this.failures.get(key);
    const count = prev && now - prev.lastMs < this.forget ? prev.count + 1 : 1;
    this.failures.delete(key); // re-inserted last: the Map's order is least recently heard first
    this.failures.set(key, { count, lastMs: now });
    if (this.failures.size > this.max) this.failures.delete(this.failures.keys().next().value!);
    return Math.min(this.cap, this.first * 2 ** Math.min(count - 1, 30));
  }

  /** Addresses remembered now. */
  get size(): number {
    return this.failures.size;
  }
}
