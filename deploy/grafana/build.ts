// Writes the dashboards of dashboards.ts to deploy/grafana/dashboards/*.json:
//   node --import tsx deploy/grafana/build.ts          write them
//   node --import tsx deploy/grafana/build.ts --check  exit 1 when a checked-in file is stale
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { render } from "./dashboards.js";

const DIR = join(import.meta.dirname, "dashboards");

async function main(argv: readonly string[]): Promise<number> {
  const check = argv.includes("--check");
  const want = await render(DIR);
  const have = new Set((await readdir(DIR)).filter((f) => f.endsWith(".json")));
  let stale = 0;
  for (const [name, text] of want) {
    const file = join(DIR, name);
    const old = have.has(name) ? await readFile(file, "utf8") : undefined;
    if (old === text) continue;
    stale++;
    if (check) console.error(`stale: ${file}`);
    else await writeFile(file, text);
  }
  for (const name of have) {
    if (want.has(name)) continue;
    stale++;
    if (check) console.error(`not generated: ${join(DIR, name)}`);
    else await rm(join(DIR, name));
  }
  if (check && stale > 0) {
    console.error("run: node --import tsx deploy/grafana/build.ts");
    return 1;
  }
  console.log(`${want.size} dashboards ${check ? "up to date" : `written (${stale} changed)`}`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : String(e));
    process.exit(1);
  },
);
