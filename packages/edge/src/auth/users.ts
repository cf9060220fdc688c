// Who may draw and who may change the catalog on an edge, over RESP (AUTH user pass) and gRPC
// (`authorization: Bearer user:secret`). A users file, one user per line:
//
//   # name   role   secret's SHA-256        optional caps
//   orders   issue  sha256:5e884898da28...  ids-per-second=50000 ids-per-call=10000
//   ops      admin  sha256:a665a45920...
//
// `issue` draws, leases, parses and describes ids; `admin` does that and changes the catalog. The
// file holds hashes only (`printf %s "$SECRET" | sha256sum`); secrets are meant to be long random
// tokens, so a fast hash is enough. A check hashes what it is given and compares digests in
// constant time, for names that exist and names that do not alike. `--password` is the user
// `default`, an admin without caps (Redis's requirepass).
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { IdBudget } from "./budget.js";

export const ROLES = ["issue", "admin"] as const;
export type Role = (typeof ROLES)[number];

export interface User {
  readonly name: string;
  readonly role: Role;
  /** Most ids drawn per second, over every connection of the user; undefined: no cap. */
  readonly idsPerSecond?: number;
  /** Most ids one call may ask for (GETN, IssueBatch, Lease); undefined: no cap. */
  readonly idsPerCall?: number;
}

/** Users at most, and the longest line: a file is read at start, not streamed. */
const MAX_USERS = 10_000;
const NAME = /^[A-Za-z0-9._-]{1,64}$/;
const HASH = /^sha256:([0-9a-f]{64})$/;
const CAP = /^(ids-per-second|ids-per-call)=([1-9][0-9]{0,11})$/;

export class UsersError extends Error {}

const sha256 = (s: string): Buffer => createHash("sha256").update(s, "utf8").digest();

export function allows(user: User, needed: Role): boolean {
  return user.role === "admin" || user.role === needed;
}

export class Users {
  private readonly byName = new Map<string, { user: User; hash: Buffer; budget?: IdBudget }>();
  /** Compared against when a name is unknown, so that case costs what a known name costs. */
  private readonly decoy = sha256("dispenser: no such user");

  private constructor(private readonly now: () => number) {}

  /** The users of a file's text; errors name the line. */
  static parse(text: string, source: string, now: () => number = () => performance.now()): Users {
    const u = new Users(now);
    const lines = text.split("\n");
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.replace(/#.*/, "").trim();
      if (line === "") continue;
      const bad = (why: string): UsersError => new UsersError(`${source}:${i + 1}: ${why}`);
      const [name, role, hash, ...caps] = line.split(/\s+/);
      if (!name || !NAME.test(name)) throw bad(`a user name is 1-64 of A-Z a-z 0-9 . _ -`);
      if (!ROLES.includes(role as Role)) throw bad(`the role of ${name} must be ${ROLES.join(" or ")}`);
      const h = HASH.exec(hash ?? "");
      if (!h) throw bad(`the secret of ${name} must be sha256:<64 hex digits>`);
      if (u.byName.has(name)) throw bad(`${name} is listed twice`);
      if (u.byName.size >= MAX_USERS) throw bad(`more than ${MAX_USERS} users`);
      const user: { -readonly [K in keyof User]: User[K] } = { name, role: role as Role };
      for (const c of caps) {
        const m = CAP.exec(c);
        if (!m) throw bad(`unknown cap "${c}" (ids-per-second=N, ids-per-call=N)`);
        if (m[1] === "ids-per-second") user.idsPerSecond = Number(m[2]);
        else user.idsPerCall = Number(m[2]);
      }
      u.add(user, Buffer.from(h[1]!, "hex"));
    }
    return u;
  }

  static load(path: string): Users {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (e) {
      throw new UsersError(
        `cannot read the users file ${path}: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    return Users.parse(text, path);
  }

  /** The `default` admin of `--password`, added to `into` (or alone). */
  static withPassword(password: string, into?: Users): Users {
    const u = into ?? new Users(() => performance.now());
    if (u.byName.has("default")) throw new UsersError("the users file lists `default`: leave out --password");
    u.add({ name: "default", role: "admin" }, sha256(password));
    return u;
  }

  private add(user: User, hash: Buffer): void {
    const budget = user.idsPerSecond !== undefined ? new IdBudget(user.idsPerSecond, this.now) : undefined;
    this.byName.set(user.name, { user, hash, ...(budget ? { budget } : {}) });
  }

  get size(): number {
    return this.byName.size;
  }

  /** The user whose name and secret these are, or undefined. */
  check(name: string, secret: string): User | undefined {
    const e = this.byName.get(name);
    const ok = timingSafeEqual(sha256(secret), e ? e.hash : this.decoy);
    return ok && e ? e.user : undefined;
  }

  /** A bearer token, `name:secret`. */
  checkToken(token: string): User | undefined {
    const colon = token.indexOf(":");
    return colon <= 0 ? undefined : this.check(token.slice(0, colon), token.slice(colon + 1));
  }

  /**
   * Whether `user` may draw `n` ids now: within its per-call cap and its budget per second.
   * Returns why not (a call too big for the user ever, or one over its rate now), or undefined
   * (and the ids are taken from the budget).
   */
  admit(user: User, n: number): { readonly over: "per-call" | "rate"; readonly message: string } | undefined {
    // More than a second's worth could never pass the rate either: refused as too big, not "later".
    const perCall = Math.min(user.idsPerCall ?? Infinity, user.idsPerSecond ?? Infinity);
    if (n > perCall)
      return { over: "per-call", message: `user ${user.name} may ask for at most ${perCall} ids per call` };
    const budget = this.byName.get(user.name)?.budget;
    if (budget && !budget.take(n))
      return {
        over: "rate",
        message: `user ${user.name} may draw at most ${user.idsPerSecond} ids per second`,
      };
    return undefined;
  }
}
