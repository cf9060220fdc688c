// Builds the production image's program: the `dispenser` command as one compiled JavaScript file,
// dist/bin/dispenser.mjs, run by plain `node` (no tsx, no TypeScript at run time). Our packages
// are bundled in; third-party packages stay outside (a native LevelDB binding cannot be bundled)
// and come from a production-only `pnpm install` (see the Dockerfile).
//
//   node --import tsx deploy/image/bundle.ts [out-dir]      (pnpm build; default: dist)
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { build } from "esbuild";

const REPO = resolve(import.meta.dirname, "..", "..");

interface Manifest {
  readonly version?: string;
  readonly dependencies?: Record<string, string>;
}
const manifest = (dir: string): Manifest =>
  JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as Manifest;

/** Every third-party runtime dependency of our packages: left for node to load. */
export function externals(): string[] {
  const names = new Set<string>();
  for (const pkg of readdirSync(join(REPO, "packages")))
    for (const dep of Object.keys(manifest(join(REPO, "packages", pkg)).dependencies ?? {}))
      if (!dep.startsWith("@dispenser/")) names.add(dep);
  return [...names].sort();
}

export async function bundle(outDir: string): Promise<string> {
  const out = resolve(outDir);
  await build({
    entryPoints: { "bin/dispenser": join(REPO, "deploy", "image", "entry.ts") },
    outdir: out,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    platform: "node",
    target: "node20",
    format: "esm",
    external: externals(),
    // Each main.ts runs itself when it is the script node started; in one bundle every module
    // shares that file name, so the guards are switched off and entry.ts alone runs the command.
    define: { "import.meta.filename": '""' },
    sourcemap: "linked",
    legalComments: "none",
    logLevel: "warning",
  });
  // `dispenser --version` reads the package.json beside bin/.
  const { version } = manifest(join(REPO, "packages", "cli"));
  writeFileSync(
    join(out, "package.json"),
    `${JSON.stringify({ name: "dispenser", version, private: true, type: "module" }, null, 2)}\n`,
  );
  return join(out, "bin", "dispenser.mjs");
}

if (import.meta.filename === process.argv[1]) {
  const outDir = process.argv[2] ?? join(REPO, "dist");
  mkdirSync(outDir, { recursive: true });
  console.log(`wrote ${await bundle(outDir)}`);
}
