import type { Dispenser } from "../../src/issuing/dispenser.js";

/** One id of `name` through the Dispenser's façade: synchronous when the sequence has one at hand. */
export function issueOne(d: Dispenser, name: string): bigint | Promise<bigint> {
  const s = d.sequence(name);
  return s instanceof Promise ? s.then((x) => x.issueOne()) : s.issueOne();
}
