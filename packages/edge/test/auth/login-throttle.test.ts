import { describe, expect, it } from "vitest";
import { LoginThrottle } from "../../src/auth/login-throttle.js";

describe("LoginThrottle", () => {
  it("answers each failure from one address later than the last, up to the cap", () => {
    let now = 0;
    const t = new LoginThrottle({ now: () => now });
    const delays = Array.from({ length: 9 }, () => t.failed("10.0.0.1"));
    expect(delays).toEqual([50, 100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    // Another address starts at the first delay: one guesser does not slow everyone down.
    expect(t.failed("10.0.0.2")).toBe(50);
    now += 1_000;
    expect(t.failed("10.0.0.1")).toBe(5000);
  });

  it("forgets an address after a quiet spell", () => {
    let now = 0;
    const t = new LoginThrottle({ now: () => now, forgetAfterMs: 60_000 });
    for (let i = 0; i < 5; i++) t.failed("a");
    now += 59_999;
    expect(t.failed("a")).toBe(1600);
    now += 60_000;
    expect(t.failed("a")).toBe(50);
  });

  it("keeps at most maxAddresses, dropping the one heard from least recently", () => {
    const t = new LoginThrottle({ maxAddresses: 3 });
    for (let i = 0; i < 4; i++) t.failed("a");
    t.failed("b");
    t.failed("c");
    t.failed("a"); // heard from again: now the most recent
    t.failed("d"); // evicts b
    expect(t.size).toBe(3);
    expect(t.failed("a")).toBe(1600); // a's count survived
    expect(t.failed("b")).toBe(50); // b starts over
    // Unknown addresses share one entry.
    expect(t.failed(undefined)).toBe(50);
    expect(t.failed(undefined)).toBe(100);
  });
});
