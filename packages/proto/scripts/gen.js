// Regenerates the TypeScript under src/gen from the protos, or checks that it is up to date.
//
//   node scripts/gen.js           lint the protos, regenerate src/gen (formatted with prettier)
//   node scripts/gen.js --check   lint, regenerate into a temp dir, and exit 1 if src/gen differs
//
// Offline: buf (whose linux-x64 binary comes inside the npm package @bufbuild/buf-linux-x64) and
// protoc-gen-ts_proto are devDependencies, and the protos have no remote dependencies.
import { spawnSync } from "node:child_process";
import console from "node:console";
import { existsSync } from "node:fs";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, relative, sep } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import * as prettier from "prettier";

const pkgDir = dirname(dirname(fileURLToPath(import.meta.url)));
const genRel = join("src", "gen");
const genDir = join(pkgDir, genRel);
const check = process.argv.includes("--check");
const require = createRequire(import.meta.url);

/** Runs the buf CLI from the @bufbuild/buf devDependency, with this package's bins on PATH. */
function buf(args) {
  const bin = require.resolve("@bufbuild/buf/bin/buf");
  const binDir = join(pkgDir, "node_modules", ".bin");
  if (!existsSync(join(binDir, "protoc-gen-ts_proto"))) {
    fail(`protoc-gen-ts_proto not found in ${binDir}: run \`pnpm install\` first`);
  }
  const env = { ...process.env, PATH: `${binDir}${delimiter}${process.env.PATH ?? ""}` };
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: pkgDir, env, stdio: "inherit" });
  if (r.error) fail(`buf ${args[0]}: ${r.error.message}`);
  if (r.status !== 0) fail(`buf ${args.join(" ")} exited with ${r.status ?? r.signal}`);
}

class GenError extends Error {}

function fail(message) {
  throw new GenError(message);
}

/** Every file under dir, as paths relative to dir with forward slashes, sorted. */
async function listFiles(dir) {
  if (!existsSync(dir)) return [];
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) =>
      relative(dir, join(e.parentPath ?? e.path, e.name))
        .split(sep)
        .join("/"),
    )
    .sort();
}

const tmp = await mkdtemp(join(tmpdir(), "dispenser-proto-gen-"));
try {
  buf(["lint"]);
  buf(["generate", "--output", tmp]);
  const outDir = join(tmp, genRel);
  const files = await listFiles(outDir);
  if (files.length === 0) fail("buf generate produced no files");

  // Format as the checked-in files are formatted: with the config that applies at their real
  // location (the workspace's .prettierrc), so `prettier --check .` passes on src/gen too.
  for (const f of files) {
    const target = join(genDir, f);
    const options = (await prettier.resolveConfig(target)) ?? {};
    const source = await readFile(join(outDir, f), "utf8");
    await writeFile(join(outDir, f), await prettier.format(source, { ...options, filepath: target }));
  }

  if (!check) {
    await rm(genDir, { recursive: true, force: true });
    await mkdir(genDir, { recursive: true });
    await cp(outDir, genDir, { recursive: true });
    console.log(`proto gen: wrote ${files.length} files to ${relative(process.cwd(), genDir) || "."}`);
  } else {
    const current = await listFiles(genDir);
    const problems = [];
    for (const f of files) {
      if (!current.includes(f)) problems.push(`missing: ${genRel}/${f}`);
      else if ((await readFile(join(genDir, f), "utf8")) !== (await readFile(join(outDir, f), "utf8")))
        problems.push(`differs: ${genRel}/${f}`);
    }
    for (const f of current) if (!files.includes(f)) problems.push(`not generated: ${genRel}/${f}`);
    if (problems.length > 0) {
      console.error(`proto gen: packages/proto/${genRel} is stale:`);
      for (const p of problems) console.error(`  ${p}`);
      fail("run `pnpm --filter @dispenser/proto gen` and commit the result");
    }
    console.log(`proto gen: ${genRel} is up to date (${files.length} files)`);
  }
} catch (e) {
  if (!(e instanceof GenError)) throw e;
  console.error(`proto gen: ${e.message}`);
  process.exitCode = 1;
} finally {
  await rm(tmp, { recursive: true, force: true });
}
