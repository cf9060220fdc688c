// The house as docs/ARCHITECTURE.md draws it is the house the lint rule enforces, and every
// package declares exactly the workspace packages the rule lets it import.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..");

async function layers(): Promise<Record<string, string[]>> {
  // A path in a variable: the typecheck does not follow the lint config (plain JavaScript).
  const config = join(ROOT, "eslint.config.js");
  const mod = (await import(config)) as { LAYERS: Record<string, string[]> };
  return mod.LAYERS;
}

describe("the house", () => {
  it("docs/ARCHITECTURE.md lists the arrows the lint rule enforces", async () => {
    const doc = readFileSync(join(ROOT, "docs/ARCHITECTURE.md"), "utf8");
    const start = doc.indexOf("<!-- layers:");
    const end = doc.indexOf("<!-- /layers -->");
    expect(start).toBeGreaterThan(0);
    const rows = doc
      .slice(start, end)
      .split("\n")
      .filter((l) => l.startsWith("|") && !l.startsWith("| package") && !l.startsWith("| ---"));
    const drawn: Record<string, string[]> = {};
    for (const row of rows) {
      const [pkg, imports] = row
        .split("|")
        .slice(1, 3)
        .map((c) => c.trim());
      drawn[pkg!] = imports === "(nothing)" ? [] : imports!.split(",").map((x) => x.trim());
    }
    expect(drawn).toEqual(await layers());
  });

  it("every package declares exactly the workspace packages it may import", async () => {
    for (const [pkg, allowed] of Object.entries(await layers())) {
      const manifest = JSON.parse(readFileSync(join(ROOT, "packages", pkg, "package.json"), "utf8")) as {
        dependencies?: Record<string, string>;
      };
      const declared = Object.keys(manifest.dependencies ?? {})
        .filter((d) => d.startsWith("@dispenser/"))
        .map((d) => d.slice("@dispenser/".length))
        .sort();
      const want = [...new Set(allowed.map((a) => a.split("/")[0]!))].sort();
      expect(declared, pkg).toEqual(want);
    }
  });
});
