import type { ChildProcess } from "node:child_process";
import { execFile, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundle } from "../deploy/image/bundle.js";
import { freePort } from "./support/ledger-cluster.js";

// The production image's program, built as the Dockerfile builds it: the bundle of compiled
// JavaScript, beside a production-only, flat `pnpm install` (no tsx, no TypeScript, no test
// tools). Run with plain node, it starts a real ledger node and a real edge that issue ids.

const REPO = resolve(import.meta.dirname, "..");
const exec = promisify(execFile);
/** What the production install must not hold: the dev toolchain. */
const DEV_ONLY = [
  "tsx",
  "typescript",
  "vitest",
  "esbuild",
  "eslint",
  "prettier",
  "ts-proto",
  "@bufbuild/buf",
];

describe("the production image's program (compiled JavaScript, production dependencies only)", () => {
  const dir = mkdtempSync(join(tmpdir(), "dispenser-image-"));
  const procs: ChildProcess[] = [];
  let bin = "";
  const output: string[] = [];

  const start = (args: string[]): ChildProcess => {
    const p = spawn(process.execPath, [bin, ...args], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    p.stdout?.on("data", (d: Buffer) => output.push(d.toString()));
    p.stderr?.on("data", (d: Buffer) => output.push(d.toString()));
    procs.push(p);
    return p;
  };

  beforeAll(async () => {
    // The manifests alone, as the Dockerfile's manifests stage leaves them.
    const manifests = [
      "package.json",
      "pnpm-lock.yaml",
      "pnpm-workspace.yaml",
      "test/package.json",
      ...readdirSync(join(REPO, "packages")).map((p) => `packages/${p}/package.json`),
    ];
    for (const m of manifests) {
      mkdirSync(dirname(join(dir, m)), { recursive: true });
      cpSync(join(REPO, m), join(dir, m));
    }
    await exec(
      "pnpm",
      [
        "install",
        "--prod",
        "--frozen-lockfile",
        "--offline",
        "--config.node-linker=hoisted",
        "--reporter=silent",
      ],
      { cwd: dir, timeout: 120_000 },
    );
    bin = await bundle(join(dir, "dist"));
  }, 180_000);

  afterAll(async () => {
    await Promise.all(
      procs.map(
        (p) =>
          new Promise<void>((r) => {
            if (p.exitCode !== null || p.signalCode !== null) return r();
            p.once("exit", () => r());
            p.kill("SIGKILL");
          }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  });

  it("holds no dev tool, and answers --version and --help with plain node", async () => {
    for (const name of DEV_ONLY) expect(existsSync(join(dir, "node_modules", name)), name).toBe(false);
    expect(existsSync(join(dir, "node_modules", "level"))).toBe(true);
    const version = await exec(process.execPath, [bin, "--version"], { cwd: dir });
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    for (const cmd of ["ledger", "edge"]) {
      const help = await exec(process.execPath, [bin, cmd, "--help"], { cwd: dir });
      expect(help.stdout).toMatch(new RegExp(`usage: dispenser ${cmd}`));
    }
  });

  it("runs a ledger node and an edge that issue ids", async () => {
    const [ledgerPort, respPort, grpcPort] = [await freePort(), await freePort(), await freePort()];
    const ledger = `127.0.0.1:${ledgerPort}`;
    start([
      "ledger",
      "--id=1",
      `--data-dir=${join(dir, "ledger-1")}`,
      `--peers=1=${ledger}`,
      "--bootstrap",
      "--tick-ms=20",
      "--log-level=warn",
    ]);
    start([
      "edge",
      `--ledger=${ledger}`,
      `--resp-listen=127.0.0.1:${respPort}`,
      `--grpc-listen=127.0.0.1:${grpcPort}`,
      "--log-level=warn",
    ]);
    const r = new Redis({
      port: respPort,
      lazyConnect: true,
      retryStrategy: () => 100,
      maxRetriesPerRequest: 0,
    });
    r.on("error", () => undefined);
    try {
      const until = Date.now() + 30_000;
      let ids: bigint[] = [];
      while (ids.length === 0) {
        if (Date.now() > until) throw new Error(`no ids from the bundle:\n${output.join("")}`);
        if (procs.some((p) => p.exitCode !== null)) throw new Error(`a process exited:\n${output.join("")}`);
        try {
          if (r.status !== "ready") await r.connect();
          await r.call("HSET", "image", "type", "3").catch((e: Error) => {
            if (!/exists/.test(e.message)) throw e;
          });
          ids = ((await r.call("GETN", "image", "3")) as string[]).map(BigInt);
        } catch {
          await new Promise((res) => setTimeout(res, 200)); // the ledger is still electing
        }
      }
      expect(ids).toEqual([ids[0]!, ids[0]! + 1n, ids[0]! + 2n]);
    } finally {
      r.disconnect();
    }
  }, 60_000);
});
