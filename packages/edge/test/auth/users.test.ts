import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Users, UsersError, allows } from "../../src/auth/users.js";

const hash = (s: string): string => `sha256:${createHash("sha256").update(s).digest("hex")}`;

describe("the users file", () => {
  const text = [
    "# name role secret caps",
    `orders issue ${hash("s3cret-orders")} ids-per-second=100 ids-per-call=10`,
    "",
    `ops admin ${hash("s3cret-ops")}   # no caps`,
  ].join("\n");

  it("checks a name and its secret; a wrong secret, an unknown name or a bad token finds nobody", () => {
    const u = Users.parse(text, "users");
    expect(u.size).toBe(2);
    expect(u.check("orders", "s3cret-orders")).toEqual({
      name: "orders",
      role: "issue",
      idsPerSecond: 100,
      idsPerCall: 10,
    });
    expect(u.check("orders", "s3cret-ops")).toBeUndefined();
    expect(u.check("nobody", "s3cret-ops")).toBeUndefined();
    expect(u.checkToken("ops:s3cret-ops")?.role).toBe("admin");
    expect(u.checkToken("ops:s3cret-ops:")).toBeUndefined();
    expect(u.checkToken(":s3cret-ops")).toBeUndefined();
    expect(u.checkToken("s3cret-ops")).toBeUndefined();
  });

  it("says which line is wrong", () => {
    const bad: [string, RegExp][] = [
      [`a issue ${hash("x")}\nb root ${hash("y")}`, /users:2: the role of b must be issue or admin/],
      ["c issue plain-text", /users:1: the secret of c must be sha256:/],
      [`d issue ${hash("x")} ids-per-hour=5`, /users:1: unknown cap "ids-per-hour=5"/],
      [`e issue ${hash("x")}\ne admin ${hash("y")}`, /users:2: e is listed twice/],
      [`f/g issue ${hash("x")}`, /users:1: a user name is/],
    ];
    for (const [t, why] of bad) expect(() => Users.parse(t, "users")).toThrow(why);
    expect(() => Users.parse("x", "users")).toThrow(UsersError);
    expect(() => Users.withPassword("pw", Users.parse(`default issue ${hash("x")}`, "u"))).toThrow(
      /leave out --password/,
    );
  });

  it("keeps a user within its caps: per call always, per second over every connection", () => {
    let now = 0;
    const u = Users.parse(text, "users", () => now);
    const orders = u.check("orders", "s3cret-orders")!;
    expect(u.admit(orders, 11)).toEqual({
      over: "per-call",
      message: "user orders may ask for at most 10 ids per call",
    });
    for (let i = 0; i < 10; i++) expect(u.admit(orders, 10)).toBeUndefined();
    expect(u.admit(orders, 1)?.over).toBe("rate");
    now += 500; // half a second: 50 ids
    for (let i = 0; i < 5; i++) expect(u.admit(orders, 10)).toBeUndefined();
    expect(u.admit(orders, 1)?.over).toBe("rate");
    const ops = u.check("ops", "s3cret-ops")!;
    expect(u.admit(ops, 1_000_000)).toBeUndefined();
  });

  it("lets an admin do what an issuer does, not the other way round", () => {
    expect(allows({ name: "a", role: "admin" }, "issue")).toBe(true);
    expect(allows({ name: "i", role: "issue" }, "admin")).toBe(false);
    expect(Users.withPassword("pw").check("default", "pw")?.role).toBe("admin");
  });
});
