// A small driver for scenario scripts kept as text (testdata/*.txt), in the manner of etcd-io/raft's
// datadriven tests: each case is a command line, a line "----", and the output the command must
// print, up to a blank line. A reader reviews a scenario without reading TypeScript, and a change
// of behaviour shows as a diff of the script.
//
//   campaign 1
//   ----
//   ok
//
// Arguments: positionals, key=value, and key=(a,b,c) lists. Lines starting with # between cases
// are comments. REWRITE=1 in the environment writes the actual outputs back into the scripts
// (review the diff before committing it).
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect, test } from "vitest";

export interface Directive {
  readonly cmd: string;
  readonly positionals: readonly string[];
  readonly args: ReadonlyMap<string, readonly string[]>;
  /** 1-based line of the command in its script. */
  readonly line: number;
}

interface Case {
  readonly directive: Directive;
  readonly commandLine: string;
  readonly expected: string;
}

function parseDirective(text: string, line: number): Directive {
  const positionals: string[] = [];
  const args = new Map<string, string[]>();
  const [cmd, ...tokens] = text.trim().split(/\s+/);
  for (const t of tokens) {
    const eq = t.indexOf("=");
    if (eq <= 0) {
      positionals.push(t);
      continue;
    }
    const v = t.slice(eq + 1);
    args.set(
      t.slice(0, eq),
      v.startsWith("(") && v.endsWith(")") ? v.slice(1, -1).split(",").filter(Boolean) : [v],
    );
  }
  return { cmd: cmd!, positionals, args, line };
}

/** The cases of a script, with the comments and blank lines between them kept for rewriting. */
function parseScript(text: string): { cases: Case[]; between: string[] } {
  const lines = text.split("\n");
  const cases: Case[] = [];
  const between: string[] = [];
  let gap: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.trim() === "" || l.startsWith("#")) {
      gap.push(l);
      continue;
    }
    const sep = lines[i + 1];
    if (sep !== "----") throw new Error(`line ${i + 2}: expected "----" after the command "${l}"`);
    const out: string[] = [];
    let j = i + 2;
    for (; j < lines.length && lines[j]!.trim() !== ""; j++) out.push(lines[j]!);
    between.push(gap.join("\n"));
    gap = [];
    cases.push({ directive: parseDirective(l, i + 1), commandLine: l, expected: out.join("\n") });
    i = j - 1;
  }
  between.push(gap.join("\n"));
  return { cases, between };
}

/**
 * One test per script in `dir`: a fresh `start()` per script, each case run in order through
 * `run`, whose output must equal the script's.
 */
export function scripts<S>(dir: string, start: () => S, run: (state: S, d: Directive) => string): void {
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith(".txt"))
    .sort()) {
    test(file, () => {
      const path = join(dir, file);
      const { cases, between } = parseScript(readFileSync(path, "utf8"));
      const state = start();
      const actual: string[] = [];
      for (const c of cases) {
        let out: string;
        try {
          out = run(state, c.directive).trimEnd();
        } catch (e) {
          out = `error: ${e instanceof Error ? e.message : String(e)}`;
        }
        if (out === "") out = "ok";
        actual.push(out);
        if (!process.env.REWRITE)
          expect(out, `${file}:${c.directive.line}: ${c.commandLine}`).toBe(c.expected);
      }
      if (process.env.REWRITE) {
        const parts: string[] = [];
        cases.forEach((c, i) => {
          if (between[i]) parts.push(between[i]);
          parts.push(`${c.commandLine}\n----\n${actual[i]}\n`);
        });
        const tail = between[cases.length]?.trim();
        writeFileSync(
          path,
          parts
            .join("\n")
            .replace(/\n{3,}/g, "\n\n")
            .trimEnd() +
            "\n" +
            (tail ? `\n${tail}\n` : ""),
        );
      }
    });
  }
}

/** An integer argument: positional `i`, or `key=`. */
export function intArg(d: Directive, at: number | string): number {
  const v = typeof at === "number" ? d.positionals[at] : d.args.get(at)?.[0];
  const n = Number(v);
  if (v === undefined || !Number.isInteger(n)) throw new Error(`${d.cmd}: argument ${at} must be an integer`);
  return n;
}

/** A list argument key=(a,b) as integers; [] when absent. */
export function intsArg(d: Directive, key: string): number[] {
  return (d.args.get(key) ?? []).map((x) => {
    const n = Number(x);
    if (!Number.isInteger(n)) throw new Error(`${d.cmd}: ${key} must list integers`);
    return n;
  });
}
