import { describe, expect, it } from "vitest";
import { realTimeViolations } from "./support/ordering.js";

// The real-time order checker the `dc` ordering tests rely on must be able to fail.
describe("realTimeViolations", () => {
  it("counts a draw below one that completed before it began, and only that", () => {
    expect(
      realTimeViolations([
        { id: 5n, invokedAt: 0, doneAt: 1 },
        { id: 3n, invokedAt: 2, doneAt: 3 },
      ]),
    ).toBe(1);
    // Overlapping draws may come back in either order.
    expect(
      realTimeViolations([
        { id: 5n, invokedAt: 0, doneAt: 3 },
        { id: 3n, invokedAt: 1, doneAt: 2 },
        { id: 6n, invokedAt: 4, doneAt: 5 },
      ]),
    ).toBe(0);
  });
});
