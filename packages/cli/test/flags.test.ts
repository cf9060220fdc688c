import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CliError, EXIT } from "../src/errors.js";
import type { CommandSpec } from "../src/flags.js";
import { helpText, parseFlags } from "../src/flags.js";

const SPEC: CommandSpec = {
  name: "demo",
  args: "<name>",
  summary: "A command for the tests.",
  flags: [
    { name: "edge", value: "host:port", default: "127.0.0.1:50051", env: "DEMO_EDGE", help: "where" },
    { name: "count", short: "n", value: "N", default: "1", help: "how many" },
    { name: "json", boolean: true, help: "JSON" },
  ],
};

function usageOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(CliError);
    expect((e as CliError).exitCode).toBe(EXIT.usage);
    return (e as CliError).message;
  }
  throw new Error("no error");
}

describe("parseFlags", () => {
  const dir = mkdtempSync(join(tmpdir(), "cli-flags-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("takes the command line over the config file over the environment over the default", () => {
    const file = join(dir, "c.json");
    writeFileSync(file, JSON.stringify({ edge: "file:1", count: 7 }));
    expect(parseFlags(SPEC, [], {}).str("edge")).toBe("127.0.0.1:50051");
    expect(parseFlags(SPEC, [], { DEMO_EDGE: "env:1" }).str("edge")).toBe("env:1");
    const fromFile = parseFlags(SPEC, ["--config", file], { DEMO_EDGE: "env:1" });
    expect(fromFile.str("edge")).toBe("file:1");
    expect(fromFile.int("count", 1, 10)).toBe(7);
    expect(parseFlags(SPEC, [`--config=${file}`, "--edge=argv:1"], { DEMO_EDGE: "env:1" }).str("edge")).toBe(
      "argv:1",
    );
    expect(parseFlags(SPEC, ["--edge", "argv:1", "--config", file], {}).str("edge")).toBe("argv:1");
  });

  it("reads positionals, short flags, switches and --", () => {
    const f = parseFlags(SPEC, ["a", "-n", "3", "--json", "--", "--not-a-flag"], {});
    expect(f.positionals).toEqual(["a", "--not-a-flag"]);
    expect(f.int("count", 1, 10)).toBe(3);
    expect(f.bool("json")).toBe(true);
    expect(parseFlags(SPEC, ["--json=false"], {}).bool("json")).toBe(false);
    expect(parseFlags(SPEC, ["-n=4"], {}).str("count")).toBe("4");
  });

  it("refuses what it does not know, with the flag's name", () => {
    expect(usageOf(() => parseFlags(SPEC, ["--colour", "red"], {}))).toBe("unknown flag --colour");
    expect(usageOf(() => parseFlags(SPEC, ["-x"], {}))).toBe("unknown flag -x");
    expect(usageOf(() => parseFlags(SPEC, ["--edge"], {}))).toBe("--edge needs a value");
    expect(usageOf(() => parseFlags(SPEC, ["--json=maybe"], {}))).toMatch(/--json takes no value/);
    expect(usageOf(() => parseFlags(SPEC, ["-n", "1.5"], {}).int("count", 1, 10))).toMatch(/integer 1..10/);
    expect(usageOf(() => parseFlags(SPEC, [], {}).arg(0, "name"))).toBe("missing name");
    const bad = join(dir, "bad.json");
    writeFileSync(bad, "[1]");
    expect(usageOf(() => parseFlags(SPEC, ["--config", bad], {}))).toMatch(/must hold a JSON object/);
    writeFileSync(bad, '{"edge": {"host": "x"}}');
    expect(usageOf(() => parseFlags(SPEC, ["--config", bad], {}))).toMatch(/"edge" must be a string/);
  });

  it("prints every flag with its default and environment variable", () => {
    const h = helpText(SPEC);
    expect(h).toMatch(/^usage: dispenser demo <name> \[flags\]/);
    expect(h).toMatch(/--edge host:port\s+where \(default: 127\.0\.0\.1:50051; env DEMO_EDGE\)/);
    expect(h).toMatch(/-n, --count N\s+how many \(default: 1\)/);
    expect(h).toContain("--config file.json");
  });
});
