// A user's ids per second, as a token bucket holding at most one second's worth: a burst of a
// second's ids is allowed, then the rate. The clock is injected (tests drive it).
export class IdBudget {
  private tokens: number;
  private last: number;

  constructor(
    private readonly perSecond: number,
    private readonly now: () => number,
  ) {
    this.tokens = perSecond;
    this.last = now();
  }

  /** Take `n` ids if the budget holds them; nothing is taken otherwise. */
  take(n: number): boolean {
    const t = this.now();
    this.tokens = Math.min(this.perSecond, this.tokens + ((t - this.last) / 1000) * this.perSecond);
    this.last = t;
    if (n > this.tokens) return false;
    this.tokens -= n;
    return true;
  }
}
