import { describe, expect, it } from "vitest";
import { addressKey, LoginThrottle } from "../../src/auth/login-throttle.js";

describe("LoginThrottle", () => {
  it("opens a longer window with each failure of one user from one address, up to the cap", () => {
    let now = 0;
    const t = new LoginThrottle({ now: () => now });
    const delays = Array.from({ length: 9 }, () => t.failed("10.0.0.1", "ops"));
    expect(delays).toEqual([50, 100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    // Another address, or another user from the same address, starts at the first window.
    expect(t.failed("10.0.0.2", "ops")).toBe(50);
    expect(t.failed("10.0.0.1", "orders")).toBe(50);
    now += 1_000;
    expect(t.failed("10.0.0.1", "ops")).toBe(5000);
  });

  it("refuses to check while a window is open, and checks again once it closes", () => {
    let now = 0;
    const t = new LoginThrottle({ now: () => now });
    expect(t.closedFor("10.0.0.1", "ops")).toBeUndefined();
    t.failed("10.0.0.1", "ops"); // window of 50 ms
    now = 20;
    expect(t.closedFor("10.0.0.1", "ops")).toBe(30);
    // Concurrent guesses do not get checked: each sees the same open window.
    expect(t.closedFor("10.0.0.1", "ops")).toBe(30);
    // Other users from the address, and the user from elsewhere, are checked.
    expect(t.closedFor("10.0.0.1", "orders")).toBeUndefined();
    expect(t.closedFor("10.0.0.9", "ops")).toBeUndefined();
    now = 50;
    expect(t.closedFor("10.0.0.1", "ops")).toBeUndefined();
  });

  it("forgets a pair after a quiet spell", () => {
    let now = 0;
    const t = new LoginThrottle({ now: () => now, forgetAfterMs: 60_000 });
    for (let i = 0; i < 5; i++) t.failed("a", "u");
    now += 59_999;
    expect(t.failed("a", "u")).toBe(1600);
    now += 60_000;
    expect(t.failed("a", "u")).toBe(50);
  });

  it("keeps at most maxEntries, dropping the one heard from least recently", () => {
    const t = new LoginThrottle({ maxEntries: 3 });
    for (let i = 0; i < 4; i++) t.failed("a", "u");
    t.failed("b", "u");
    t.failed("c", "u");
    t.failed("a", "u"); // heard from again: now the most recent
    t.failed("d", "u"); // evicts b
    expect(t.size).toBe(3);
    expect(t.failed("a", "u")).toBe(1600); // a's count survived
    expect(t.failed("b", "u")).toBe(50); // b starts over
  });

  it("counts an IPv6 host by its /64, and IPv4-mapped addresses as IPv4", () => {
    expect(addressKey("2001:db8:1:2:aaaa::1")).toBe("2001:db8:1:2::/64");
    expect(addressKey("2001:db8:1:2:bbbb:cccc:dddd:eeee")).toBe("2001:db8:1:2::/64");
    expect(addressKey("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(addressKey("::1")).toBe("0:0:0:0::/64");
    expect(addressKey("::ffff:10.1.2.3")).toBe("10.1.2.3");
    expect(addressKey("10.1.2.3")).toBe("10.1.2.3");
    expect(addressKey(undefined)).toBe("?");
    const t = new LoginThrottle();
    t.failed("2001:db8:1:2::5", "ops");
    expect(t.closedFor("2001:db8:1:2::6", "ops")).toBeGreaterThan(0);
  });
});
