import type { ChildProcess } from "node:child_process";
import { execFile, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import type { IssueBatchResponse } from "@dispenser/proto";
import { createDispenser } from "@dispenser/client";
import { DispenserClient } from "@dispenser/proto";
import type { ServiceError } from "@grpc/grpc-js";
import { credentials } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "./support/ledger-cluster.js";

// The README's start command as a user runs it: `pnpm start` is
// `node --import tsx packages/cli/src/main.ts dev`, here with a temporary data directory and free
// ports (the defaults 6380/50051/9464 may be taken on a CI machine). Talk to it with redis-cli and
// gRPC, Ctrl-C it, start it again, and check that the sequence survived and no id repeated.

const REPO = resolve(import.meta.dirname, "..");
const MAIN = join(REPO, "packages", "cli", "src", "main.ts");
const run = promisify(execFile);
const hasRedisCli = spawnSync("redis-cli", ["--version"]).status === 0;

class Dev {
  proc: ChildProcess | undefined;
  stdout = "";
  stderr = "";
  constructor(private readonly args: string[]) {}

  /** Starts `dispenser dev` and waits for its banner. */
  async start(): Promise<void> {
    this.stdout = "";
    this.stderr = "";
    const proc = spawn(process.execPath, ["--import", "tsx", MAIN, "dev", ...this.args], {
      cwd: REPO,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.proc = proc;
    proc.stdout?.on("data", (d: Buffer) => (this.stdout += d.toString()));
    proc.stderr?.on("data", (d: Buffer) => (this.stderr += d.toString()));
    const until = Date.now() + 30_000;
    while (!this.stdout.includes("Ctrl-C stops the cluster")) {
      if (proc.exitCode !== null)
        throw new Error(`dev exited ${proc.exitCode}: ${this.stdout}${this.stderr}`);
      if (Date.now() > until) throw new Error(`dev did not start: ${this.stdout}${this.stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  endpoint(label: string): string {
    const m = new RegExp(`^\\s+${label}\\s+(\\S+)`, "m").exec(this.stdout);
    if (!m) throw new Error(`no ${label} line in: ${this.stdout}`);
    return m[1]!;
  }

  /** Sends `sig`, resolves with the exit code. */
  async stop(sig: NodeJS.Signals = "SIGINT"): Promise<number | string | null> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return p?.exitCode ?? null;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`dev did not exit on ${sig}: ${this.stdout}`)), 15_000);
      p.once("exit", (code, s) => {
        clearTimeout(t);
        resolve(code ?? s);
      });
      p.kill(sig);
    });
  }
}

function issueBatch(address: string, sequence: string, count: number): Promise<bigint[]> {
  const c = new DispenserClient(address, credentials.createInsecure());
  return new Promise<bigint[]>((resolve, reject) =>
    c.issueBatch({ sequence, count }, (e: ServiceError | null, r: IssueBatchResponse) => {
      c.close();
      if (e) return reject(e);
      if (r.ids?.$case === "range") {
        const { start, count: n, step } = r.ids.value;
        resolve(Array.from({ length: Number(n) }, (_, i) => start + BigInt(i) * step));
      } else resolve(r.ids?.$case === "list" ? r.ids.value.values : []);
    }),
  );
}

function createViaGrpc(address: string): Promise<void> {
  const c = new DispenserClient(address, credentials.createInsecure());
  return new Promise<void>((resolve, reject) =>
    c.createSequence(
      {
        sequence: {
          name: "order_id",
          type: 2,
          length: 12,
          starting: 100000000000n,
          step: 0n,
          datacenters: 0,
          layout: 0,
          ordering: 0,
          autoDisk: 0,
          limits: { maxSegmentSize: 0n },
          revision: 0n,
          createdAtMs: 0n,
        },
      },
      (e: ServiceError | null) => (c.close(), e ? reject(e) : resolve()),
    ),
  );
}

async function redisCli(port: string, ...args: string[]): Promise<string> {
  const r = await run("redis-cli", ["-p", port, ...args], { encoding: "utf8", timeout: 10_000 });
  return (r.stdout + r.stderr).trim();
}

describe("pnpm start (dispenser dev)", () => {
  const dir = mkdtempSync(join(tmpdir(), "dispenser-start-"));
  let dev: Dev;
  let args: string[];

  beforeAll(async () => {
    const ports = await Promise.all(Array.from({ length: 6 }, () => freePort()));
    args = [
      "--data-dir",
      join(dir, ".dispenser"),
      "--ledger-listen",
      ports
        .slice(0, 3)
        .map((p) => `127.0.0.1:${p}`)
        .join(","),
      "--resp-listen",
      `127.0.0.1:${ports[3]}`,
      "--grpc-listen",
      `127.0.0.1:${ports[4]}`,
      "--metrics-listen",
      `127.0.0.1:${ports[5]}`,
    ];
    dev = new Dev(args);
  });

  afterAll(async () => {
    await dev?.stop("SIGKILL").catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it("starts, serves RESP and gRPC, stops on Ctrl-C, and keeps every sequence without repeating an id", async () => {
    await dev.start();
    expect(dev.stdout).toContain("the edge runs without the Redis plane");
    expect(dev.stdout).toContain("HSET order_id type 2 length 12 starting 100000000000");
    const resp = dev.endpoint("RESP");
    const grpc = dev.endpoint("gRPC");
    const respPort = resp.slice(resp.lastIndexOf(":") + 1);
    const metrics = await fetch(dev.endpoint("metrics"));
    expect(await metrics.text()).toMatch(/dispenser_ledger_raft_term\{node="3"\}/);

    const ids: bigint[] = [];
    if (hasRedisCli) {
      expect(
        await redisCli(respPort, "HSET", "order_id", "type", "2", "length", "12", "starting", "100000000000"),
      ).toBe("3");
      ids.push(BigInt(await redisCli(respPort, "GET", "order_id")));
      expect(await redisCli(respPort, "INFO", "order_id")).toContain("name:order_id");
    } else {
      console.log("redis-cli is not installed: creating the sequence over gRPC instead");
      await createViaGrpc(grpc);
    }
    ids.push(...(await issueBatch(grpc, "order_id", 500)));
    expect(ids[0]).toBe(100000000000n);
    // A service with the SDK: one import, ids from a locally held range.
    const sdk = createDispenser({ endpoints: [grpc], sequence: "order_id" });
    for (let i = 0; i < 1000; i++) ids.push(await sdk.next());
    await sdk.close();

    // A second start on the same ports fails with one line naming the flag to change.
    const again = await run(process.execPath, ["--import", "tsx", MAIN, "dev", ...args], {
      cwd: REPO,
      encoding: "utf8",
    }).catch((e: { code: number; stderr: string }) => e);
    expect("code" in again ? again.code : 0).toBe(1);
    expect(again.stderr.trim().split("\n")).toHaveLength(1);
    expect(again.stderr).toMatch(/is already in use .*choose another with --ledger-listen/);

    expect(await dev.stop("SIGINT")).toBe(0);
    expect(dev.stdout).toMatch(/stopped: \d+ unused ids of 1 sequences went back to the ledger/);

    await dev.start();
    if (hasRedisCli) {
      expect(await redisCli(respPort, "INFO", "order_id")).toContain("length:12");
      ids.push(BigInt(await redisCli(respPort, "GET", "order_id")));
    }
    ids.push(...(await issueBatch(grpc, "order_id", 500)));
    expect(new Set(ids).size).toBe(ids.length);
    const max = ids.slice(0, -500).reduce((a, b) => (a > b ? a : b));
    expect(ids.slice(-500).every((id) => id > max)).toBe(true);
    expect(await dev.stop("SIGTERM")).toBe(0);
  });
});
