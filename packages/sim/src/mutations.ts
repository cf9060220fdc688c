import { cpSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { RaftImpl } from "./simulation.js";

/**
 * Deliberately broken rules of the Raft core and of its Ready loop. Each is a textual edit of a
 * copy of the package's source; the simulator must catch every one of them. They prove the
 * checkers can fail.
 */
export interface Mutation {
  readonly name: string;
  readonly file: string;
  readonly find: string;
  readonly replace: string;
  readonly breaks: string;
  /**
   * The simulator catches it within this many seeds (seeds 1..n), or `undefined` when the broken
   * rule is unreachable in simulated histories and a unit test guards it instead (`guardedBy`).
   */
  readonly seedsMax: number | undefined;
  readonly guardedBy?: string;
}

export const MUTATIONS: readonly Mutation[] = [
  {
    name: "commit-previous-term",
    file: "log.ts",
    find: "if (maxIndex > this.committed && this.term(maxIndex) === term) {",
    replace: "if (maxIndex > this.committed && this.term(maxIndex) !== undefined && term > 0) {",
    breaks: "only current-term entries are committed by counting (figure 8)",
    seedsMax: 1000,
  },
  {
    name: "no-up-to-date-check",
    file: "log.ts",
    find: "return term > ourTerm || (term === ourTerm && lastIndex >= this.lastIndex());",
    replace: "return term >= 0 || ourTerm < 0;",
    breaks: "a vote goes only to a candidate whose log is at least as up-to-date (§5.4.1)",
    seedsMax: 50,
  },
  {
    name: "vote-twice",
    file: "raft.ts",
    find: "(this.vote === NONE && this.lead === NONE) ||",
    replace: "true ||",
    breaks: "one vote per term",
    seedsMax: 50,
  },
  {
    name: "follower-commit-unverified",
    file: "log.ts",
    find: "this.commitTo(Math.min(committed, lastNew));",
    replace: "this.commitTo(Math.min(committed, this.lastIndex()));",
    breaks: "a follower commits only what the append verified",
    // Needs an empty append whose prev entry matches below a stale tail while the leader's
    // commit is past it; the leader's appends carry entries that truncate the tail first.
    seedsMax: undefined,
    guardedBy: "packages/raft/test/paper.test.ts",
  },
  {
    name: "truncate-on-stale-append",
    file: "log.ts",
    find: "    const ci = this.findConflict(ents);\n    if (ci !== 0) {",
    replace:
      "    const ci = ents.length > 0 ? ents[0]!.index : 0;\n    if (ci !== 0 && ci > this.committed) {",
    breaks: "only a real conflict truncates the log",
    seedsMax: 50,
  },
  {
    name: "leader-acks-before-sync",
    file: "raft.ts",
    find: "    this.log.append(stamped);\n",
    replace:
      "    this.log.append(stamped);\n    this.prs.get(this.id)?.maybeUpdate(li);\n    this.maybeCommit();\n",
    breaks: "a leader counts its own entries only once they are durable",
    seedsMax: 200,
  },
  {
    name: "forget-vote-on-restart",
    file: "raft.ts",
    find: "    this.vote = hs.vote;",
    replace: "    this.vote = NONE;",
    breaks: "the vote is durable within a term",
    seedsMax: 500,
  },
  {
    name: "heartbeat-commit-past-match",
    file: "raft.ts",
    find: "const commit = Math.min(pr.match, this.log.committed);",
    replace: "const commit = this.log.committed;",
    breaks: "a heartbeat never tells a follower to commit past what it holds",
    seedsMax: 50,
  },
  // The Ready loop's own rules (loop/ready-loop.ts): production and the simulator run this code.
  {
    name: "loop-ack-before-sync",
    file: "loop/ready-loop.ts",
    find: "const sentEarly = rd.sendBeforePersist && rd.messages.length > 0;",
    replace: "const sentEarly = rd.messages.length > 0;",
    breaks: "a node's acks and votes leave only once its write is synced",
    seedsMax: 200,
  },
  {
    name: "loop-apply-before-sync",
    file: "loop/ready-loop.ts",
    find: "const early = this.durable(rd);",
    replace: "const early = rd.committedEntries.length > 0;",
    breaks: "an entry is applied only once it is on this node's synced disk",
    seedsMax: 200,
  },
  {
    name: "loop-early-apply-of-replaced",
    file: "loop/ready-loop.ts",
    find: "return rd.entries.length === 0 || last < rd.entries[0]!.index;",
    replace: "return true;",
    breaks: "entries this Ready writes are not applied while it writes them",
    seedsMax: 500,
  },
  {
    name: "loop-read-before-apply",
    file: "loop/ready-loop.ts",
    find: "if (this.applied >= index) k();",
    replace: "if (index >= 0) k();",
    breaks: "a read is answered only once the applied index reaches its read index",
    seedsMax: 1000,
  },
  {
    name: "loop-read-ids-restart",
    file: "loop/ready-loop.ts",
    find: "this.nextReadId = o.firstReadId;",
    replace: "this.nextReadId = 1;",
    breaks:
      "read ids of a new run differ from the last run's, so a late answer is not taken for a new read's",
    // Found by the simulator at seed 6622 of 100,000 (a read answered with the index of a read of
    // the node's previous run): too rare for the default seeds.
    seedsMax: undefined,
    guardedBy: "packages/raft/test/ready-loop.test.ts",
  },
  {
    name: "loop-membership-answer-before-advance",
    file: "loop/ready-loop.ts",
    find: "if (e.type === EntryType.ConfChange) this.inForce.push(p.answer);",
    replace: "if (e.type === EntryType.ConfChange) p.answer.resolve(result as R);",
    breaks:
      "a membership change is answered after advance() puts it in force, even when applying yields first",
    // Found by the simulator at seed 45229 of 100,000 (a Ready of more than 32 committed entries):
    // too rare for the default seeds.
    seedsMax: undefined,
    guardedBy: "packages/raft/test/ready-loop.test.ts",
  },
];

/** Copy the Raft core's source, apply one mutation, and import the copy. */
export async function loadMutant(name: string): Promise<RaftImpl> {
  const m = MUTATIONS.find((x) => x.name === name);
  if (!m) throw new Error(`unknown mutation ${name}; known: ${MUTATIONS.map((x) => x.name).join(", ")}`);
  const src = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "raft", "src");
  const dir = mkdtempSync(join(tmpdir(), `raft-mutant-${name}-`));
  cpSync(src, dir, { recursive: true });
  for (const f of readdirSync(dir, { recursive: true, encoding: "utf8" }))
    if (f.endsWith(".test.ts")) writeFileSync(join(dir, f), "");
  const file = join(dir, m.file);
  const text = readFileSync(file, "utf8");
  if (!text.includes(m.find)) throw new Error(`mutation ${name}: target text not found in ${m.file}`);
  writeFileSync(file, text.replace(m.find, m.replace));
  return (await import(join(dir, "index.ts"))) as RaftImpl;
}
