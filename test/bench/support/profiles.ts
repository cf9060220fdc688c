// A .cpuprofile summary: self time per function and per file, mapped back to the TypeScript source.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import type { SourceMapPayload } from "node:module";
import { SourceMap } from "node:module";
import { join } from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface HotSpot {
  selfMs: number;
  /** Percent of the busy (non-idle) time. */
  percent: number;
  functionName: string;
  location: string;
}

export interface ProfileSummary {
  file: string;
  busyMs: number;
  idleMs: number;
  spots: HotSpot[];
  /** Self time per source file (node_modules collapsed to the package). */
  byFile: { selfMs: number; percent: number; file: string }[];
}

// tsx compiles each .ts file with whitespace minified (so a profile sees nearly everything on line
// 1) and keeps the output with its source map in a cache directory: map profile positions back to
// the TypeScript source through it.

interface CompiledSource {
  code: string;
  map: SourceMap;
}

/** Compiled versions of `sources` in the tsx cache, newest first. */
function tsxCompiled(sources: ReadonlySet<string>): Map<string, CompiledSource[]> {
  const out = new Map<string, CompiledSource[]>();
  const uid = process.getuid?.() ?? 0;
  const dir = join(tmpdir(), `tsx-${uid}`);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  const found: { src: string; mtime: number; c: CompiledSource }[] = [];
  for (const name of names) {
    let text: string;
    try {
      text = readFileSync(join(dir, name), "utf8");
    } catch {
      continue;
    }
    if (![...sources].some((src) => text.includes(src))) continue;
    try {
      const j = JSON.parse(text) as { code?: unknown; map?: { sources?: unknown; mappings?: unknown } };
      const src = Array.isArray(j.map?.sources) ? (j.map.sources[0] as unknown) : undefined;
      if (typeof j.code !== "string" || typeof j.map?.mappings !== "string" || typeof src !== "string")
        continue;
      if (!sources.has(src)) continue;
      const mtime = statSync(join(dir, name)).mtimeMs;
      found.push({ src, mtime, c: { code: j.code, map: new SourceMap(j.map as SourceMapPayload) } });
    } catch {
      continue;
    }
  }
  found.sort((a, b) => b.mtime - a.mtime);
  for (const f of found) {
    const list = out.get(f.src) ?? [];
    list.push(f.c);
    out.set(f.src, list);
  }
  return out;
}

/** The 0-based source line of a 0-based position in the compiled code. */
function sourceLine(c: CompiledSource, line: number, col: number): number | undefined {
  const e = c.map.findEntry(line, col);
  return "originalLine" in e ? e.originalLine : undefined;
}

/** Whether `fn` is named near `col` of line `line` of the compiled code (to pick the right version). */
function namesMatch(c: CompiledSource, line: number, col: number, fn: string): boolean {
  if (fn === "" || fn === "(anonymous)") return true;
  const lines = c.code.split("\n");
  const text = lines[line] ?? "";
  return text.slice(Math.max(0, col - 60), col + fn.length + 60).includes(fn.replace(/^(get|set) /, ""));
}

/**
 * Self time per function (summed over its call sites) of the main thread's .cpuprofile in `dir`,
 * counting only samples inside `windowUs` (monotonic µs) when given
 * (Node names it CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; thread 0 is the main one, the
 * others are loader workers).
 */
export function hotSpots(
  dir: string,
  top: number,
  repoRoot: string,
  windowUs?: readonly [number, number],
): ProfileSummary {
  const files = readdirSync(dir)
    .filter((f) => /\.0\.\d+\.cpuprofile$/.test(f))
    .sort();
  const file = files[files.length - 1];
  if (!file) throw new Error(`no main-thread .cpuprofile in ${dir}`);
  const p = JSON.parse(readFileSync(join(dir, file), "utf8")) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  // Map frames of the repository's own .ts files back to their source lines.
  const tsUrls = new Set<string>();
  for (const n of p.nodes) {
    const path = n.callFrame.url.replace(/^file:\/\//, "");
    if (path.endsWith(".ts") && !path.includes("/node_modules/")) tsUrls.add(path);
  }
  const compiled = tsxCompiled(tsUrls);
  const chosen = new Map<string, CompiledSource | undefined>();
  for (const [src, versions] of compiled) {
    const frames = p.nodes.map((n) => n.callFrame).filter((cf) => cf.url.replace(/^file:\/\//, "") === src);
    let best: CompiledSource | undefined;
    let bestScore = -1;
    for (const v of versions) {
      const score = frames.filter((cf) =>
        namesMatch(v, cf.lineNumber, cf.columnNumber, cf.functionName),
      ).length;
      if (score > bestScore) {
        best = v;
        bestScore = score;
      }
    }
    chosen.set(src, best);
  }
  const lineOf = (cf: ProfileNode["callFrame"]): number => {
    const c = chosen.get(cf.url.replace(/^file:\/\//, ""));
    const l = c ? sourceLine(c, cf.lineNumber, cf.columnNumber) : undefined;
    return (l ?? cf.lineNumber) + 1;
  };
  const self = new Map<string, { ms: number; fn: string; loc: string }>();
  const perFile = new Map<string, number>();
  let busyMs = 0;
  let idleMs = 0;
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    if (windowUs && (t < windowUs[0] || t > windowUs[1])) continue;
    const n = byId.get(p.samples[i]!);
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000;
    if (!n) continue;
    const cf = n.callFrame;
    const fn = cf.functionName || "(anonymous)";
    if (fn === "(idle)") {
      idleMs += dt;
      continue;
    }
    busyMs += dt;
    const url = cf.url
      .replace(/^file:\/\//, "")
      .replace(/.*\/node_modules\/\.pnpm\/[^/]+\/node_modules\//, "node_modules/")
      .replace(`${repoRoot}/`, "");
    const loc = url ? `${url}:${lineOf(cf)}` : "(native)";
    const key = `${fn}@${loc}`;
    const e = self.get(key) ?? { ms: 0, fn, loc };
    e.ms += dt;
    self.set(key, e);
    const pkg = /^node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
    const fileKey = pkg ? `node_modules/${pkg}` : url || `(native) ${fn}`;
    perFile.set(fileKey, (perFile.get(fileKey) ?? 0) + dt);
  }
  const spots = [...self.values()]
    .sort((a, b) => b.ms - a.ms)
    .slice(0, top)
    .map((e) => ({ selfMs: e.ms, percent: (100 * e.ms) / busyMs, functionName: e.fn, location: e.loc }));
  const byFile = [...perFile]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([f, ms]) => ({ selfMs: ms, percent: (100 * ms) / busyMs, file: f }));
  return { file: join(dir, file), busyMs, idleMs, spots, byFile };
}
