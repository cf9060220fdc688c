import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { BufferIo, DevCluster, EXIT, runCli } from "@dispenser/cli";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "./support/ledger-cluster.js";

// Every `dispenser` command against an embedded cluster, in this process (runCli with captured
// output) for speed, and through the real launcher for what only a process shows: exit codes.

const REPO = resolve(import.meta.dirname, "..");
const BIN = join(REPO, "packages", "cli", "bin", "dispenser.js");
const exec = promisify(execFile);

async function bin(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return exec(process.execPath, [BIN, ...args], { cwd: REPO, encoding: "utf8", timeout: 20_000 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => e,
  );
}

/** The part of `dispenser bench --json`'s summary the tests read. */
interface BenchSummary {
  target: string;
  ids: number;
  errors: number;
  repeats: number;
}

describe("dispenser CLI", () => {
  const dir = mkdtempSync(join(tmpdir(), "dispenser-cli-"));
  let cluster: DevCluster;
  let edge: string;
  let ledger: string;
  let metrics: string;
  let resp: string;

  async function cli(...args: string[]): Promise<{ code: number | "running"; out: string; err: string }> {
    const io = new BufferIo({ DISPENSER_EDGE: edge });
    const code = await runCli(args, io);
    return { code, out: io.stdout, err: io.stderr };
  }

  /** A usage or server error: exactly one line on stderr, nothing on stdout. */
  async function fails(code: number, pattern: RegExp, ...args: string[]): Promise<void> {
    const r = await cli(...args);
    expect(r.err).toMatch(pattern);
    expect(r.code).toBe(code);
    expect(r.err.trim().split("\n")).toHaveLength(1);
    expect(r.err).toMatch(/^dispenser: /);
    expect(r.out).toBe("");
  }

  beforeAll(async () => {
    const ports = await Promise.all(Array.from({ length: 6 }, () => freePort()));
    const at = (p: number | undefined): string => `127.0.0.1:${p}`;
    cluster = new DevCluster({
      dataDir: join(dir, "data"),
      ledgerListen: ports.slice(0, 3).map(at),
      respListen: at(ports[3]),
      grpcListen: at(ports[4]),
      metricsListen: at(ports[5]),
      password: undefined,
      redisNodes: [],
      clusterId: "cli-test",
      tickMs: 20,
      logLevel: "silent",
      leaderTimeoutMs: 20_000,
      ledgerStopGraceMs: 500,
    });
    const e = await cluster.start();
    edge = e.grpc!;
    metrics = e.metrics!;
    resp = e.resp!;
    ledger = e.ledger.join(",");
  }, 30_000);

  afterAll(async () => {
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("seq create, list, describe, delete (text and --json)", async () => {
    const created = await cli("seq", "create", "orders", "--type", "2", "--length", "8", "--json");
    expect(created.code).toBe(0);
    expect(JSON.parse(created.out)).toMatchObject({
      name: "orders",
      type: 2,
      length: 8,
      starting: "10000000",
    });
    const users = await cli("seq", "create", "users", "--type", "3", "--starting", "100", "--step", "5");
    expect(users.code).toBe(0);
    expect(users.out).toMatch(/^created users: type 3/);
    await fails(EXIT.server, /exists.*\(ALREADY_EXISTS\)/, "seq", "create", "orders", "--type", "3");

    const list = await cli("seq", "list");
    expect(list.out).toMatch(/^NAME\s+TYPE\s+LENGTH/);
    expect(list.out).toMatch(/^orders\s+2\s+8\s+10000000/m);
    const listed = JSON.parse((await cli("seq", "list", "--json")).out) as { name: string }[];
    expect(listed.map((s) => s.name)).toEqual(["orders", "users"]);

    const d = JSON.parse((await cli("seq", "describe", "users", "--json")).out) as Record<string, unknown>;
    expect(d).toMatchObject({ name: "users", starting: "100", step: "5", ordering: "edge" });
    expect((await cli("seq", "describe", "users")).out).toMatch(/^auto_disk:\s+pre-checkpoint$/m);
    await fails(EXIT.server, /NOT_FOUND/, "seq", "describe", "nosuch");

    await cli("seq", "create", "doomed", "--type", "3");
    expect(JSON.parse((await cli("seq", "delete", "doomed", "--json")).out)).toMatchObject({
      name: "doomed",
    });
    await fails(EXIT.server, /NOT_FOUND/, "seq", "describe", "doomed");
  });

  it("seq update changes what is safe to change, and the edge follows at once", async () => {
    await cli("seq", "create", "tuned", "--type", "3");
    expect((await cli("next", "tuned", "-n", "5")).code).toBe(0);
    const u = await cli("seq", "update", "tuned", "--max-segment-size", "16", "--auto-disk", "pre_close");
    expect(u.code).toBe(0);
    expect(u.out).toMatch(
      /^updated tuned: ordering edge, auto_disk pre_close, max_segment_size 16, reserve_seconds default, revision \d+$/m,
    );
    const d = JSON.parse((await cli("seq", "describe", "tuned", "--json")).out) as Record<string, unknown>;
    expect(d).toMatchObject({ auto_disk: "pre_close", max_segment_size: "16", reserve_seconds: "default" });
    // A reserve of its own (each DC's pool holds 2 minutes of its rate for it), then none.
    expect((await cli("seq", "update", "tuned", "--reserve-seconds", "120")).out).toMatch(
      /reserve_seconds 120,/,
    );
    expect((await cli("seq", "update", "tuned", "--reserve-seconds", "0")).out).toMatch(/reserve_seconds 0,/);
    await fails(EXIT.usage, /--reserve-seconds/, "seq", "update", "tuned", "--reserve-seconds", "86401");
    // Over RESP too: HSET takes reserve_seconds, and refuses one above a day.
    const r = new Redis({ port: Number(resp.split(":")[1]), host: "127.0.0.1" });
    try {
      await r.call("HSET", "reserved", "type", "3", "reserve_seconds", "300");
      const rd = JSON.parse((await cli("seq", "describe", "reserved", "--json")).out) as Record<
        string,
        unknown
      >;
      expect(rd).toMatchObject({ reserve_seconds: "300" });
      await expect(r.call("HSET", "nope", "type", "3", "reserve_seconds", "86401")).rejects.toThrow(
        /reserve_seconds/,
      );
    } finally {
      r.disconnect();
    }
    // The edge dropped what it held under the old definition: its segments now hold 16 at most.
    const drawn = JSON.parse((await cli("next", "tuned", "-n", "48", "--json")).out) as { ids: string[] };
    expect(new Set(drawn.ids).size).toBe(48);
    // More than three segments' worth in one draw could never be counted on: refused at once.
    await fails(
      EXIT.server,
      /count 49 is more than one draw of "tuned" can hold: 48/,
      "next",
      "tuned",
      "-n",
      "49",
    );
    const text = await (await fetch(`http://${metrics}/metrics`)).text();
    const size = /^dispenser_edge_segment_size\{[^}]*sequence="tuned"[^}]*\} (\d+)$/m.exec(text);
    expect(size).not.toBeNull();
    expect(Number(size![1])).toBeLessThanOrEqual(16);
    const stale = d["revision"] as string;
    await fails(EXIT.usage, /nothing to change/, "seq", "update", "tuned");
    await fails(EXIT.usage, /--ordering must be one of/, "seq", "update", "tuned", "--ordering", "sideways");
    await fails(EXIT.server, /NOT_FOUND/, "seq", "update", "nosuch", "--max-segment-size", "8");
    // Every strategy, memory included, issues from ledger grants: a switch cannot repeat an id.
    await cli("seq", "update", "tuned", "--auto-disk", "memory");
    const after = JSON.parse((await cli("next", "tuned", "-n", "48", "--json")).out) as { ids: string[] };
    expect(new Set([...drawn.ids, ...after.ids]).size).toBe(96);
    await cli("seq", "update", "tuned", "--max-segment-size", "32");
    await fails(
      EXIT.server,
      /revision/i,
      "seq",
      "update",
      "tuned",
      "--max-segment-size",
      "8",
      "--expected-revision",
      stale,
    );
  });

  it("next, parse, status", async () => {
    await cli("seq", "create", "tickets", "--type", "2", "--length", "6", "--auto-disk", "pre_close");
    const one = await cli("next", "tickets");
    expect(one).toMatchObject({ code: 0, out: "100000\n" });
    const batch = JSON.parse((await cli("next", "tickets", "-n", "5", "--json")).out) as { ids: string[] };
    expect(batch.ids).toEqual(["100001", "100002", "100003", "100004", "100005"]);
    expect((await cli("next", "tickets", "-n", "3")).out.trim().split("\n")).toHaveLength(3);

    const parsed = JSON.parse((await cli("parse", "tickets", "100004", "--json")).out) as object;
    expect(parsed).toMatchObject({ sequence: "tickets", dc: 0, counter: "4" });
    expect((await cli("parse", "tickets", "100004")).out).toMatch(/^counter:\s+4$/m);
    await fails(EXIT.server, /INVALID_ARGUMENT/, "parse", "tickets", "12");

    const st = await cli("status", "--ledger", ledger, "--edge-metrics", metrics);
    expect(st.code).toBe(0);
    expect(st.out).toMatch(/^ledger cluster cli-test: leader \d at /);
    expect(st.out).toMatch(/^ID\s+ADDRESS\s+ROLE\s+STATE\s+TERM\s+COMMIT\s+APPLIED\s+MATCH\s+LAG$/m);
    expect(st.out).toMatch(/^tickets\s+\d+\s+\d+\s+9$/m);
    const j = JSON.parse(
      (await cli("status", "--ledger", ledger, "--edge-metrics", metrics, "--json")).out,
    ) as {
      leader: { id: string };
      members: { state: string; lag: string }[];
      edge: { up: boolean };
      runway: { sequence: string }[];
    };
    expect(j.members).toHaveLength(3);
    expect(j.members.filter((m) => m.state === "leader")).toHaveLength(1);
    expect(j.edge.up).toBe(true);
    expect(j.runway.map((r) => r.sequence)).toContain("tickets");
  });

  /** `dispenser bench load --duration 1 --check --json ...args`: it must succeed; its summary. */
  async function benchSummary(...args: string[]): Promise<BenchSummary> {
    const r = await cli("bench", "load", "--duration", "1", "--check", "--json", ...args);
    expect(r.code).toBe(0);
    return JSON.parse(r.out.trim().split("\n").at(-1)!) as BenchSummary;
  }

  it("bench over gRPC, the SDK and RESP draws unique ids and prints a summary", async () => {
    const s = await benchSummary("--mode", "grpc", "--concurrency", "4");
    expect(s.ids).toBeGreaterThan(0);
    expect(s).toMatchObject({ errors: 0, repeats: 0 });
    // Through the SDK: ranges leased through the edge, ids handed out in the bench process.
    for (const batch of ["1", "100"]) {
      const ks = await benchSummary("--mode", "sdk", "--batch", batch);
      expect(ks.target).toMatch(batch === "1" ? /^sdk via .* next\(\)$/ : /nextBatch\(100\)$/);
      expect(ks.ids).toBeGreaterThan(0);
      expect(ks).toMatchObject({ errors: 0, repeats: 0 });
    }
    const r = await cli("bench", "load", "--resp", resp, "--duration", "1", "--batch", "10", "--check");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/ids\/s\s+[\d,]+/);
    expect(r.out).toMatch(/repeated ids\s+0/);
    expect(r.out).toMatch(/^\[\s+1s\] .* ids\/s {2}p50 .* ms {2}p99 .* ms {2}errors 0$/m);
  });

  it("answers bad arguments with one line and exit code 2", async () => {
    await fails(EXIT.usage, /unknown command "frobnicate" \(try 'dispenser --help'\)/, "frobnicate");
    await fails(EXIT.usage, /missing subcommand/, "seq");
    await fails(EXIT.usage, /unknown subcommand "seq rename"/, "seq", "rename");
    await fails(EXIT.usage, /missing sequence name/, "seq", "create", "--type", "3");
    await fails(EXIT.usage, /--type must be 1, 2 or 3, got "7"/, "seq", "create", "x", "--type", "7");
    await fails(EXIT.usage, /--type is required/, "seq", "create", "x");
    await fails(EXIT.usage, /--length is required for type 2/, "seq", "create", "x", "--type", "2");
    await fails(
      EXIT.usage,
      /--ordering must be one of/,
      "seq",
      "create",
      "x",
      "--type",
      "3",
      "--ordering",
      "up",
    );
    await fails(EXIT.usage, /sequence name "no way" must be/, "seq", "create", "no way", "--type", "3");
    await fails(EXIT.usage, /--count must be an integer 1..10000, got "0"/, "next", "tickets", "-n", "0");
    await fails(EXIT.usage, /--count must be an integer 1..10000, got "abc"/, "next", "tickets", "-n", "abc");
    await fails(
      EXIT.usage,
      /--count must be an integer 1..10000, got "10001"/,
      "next",
      "tickets",
      "-n",
      "10001",
    );
    await fails(EXIT.usage, /--count needs a value/, "next", "tickets", "-n");
    await fails(EXIT.usage, /unknown flag --colour/, "seq", "list", "--colour", "red");
    await fails(EXIT.usage, /missing id/, "parse", "tickets");
    await fails(EXIT.usage, /unexpected argument "extra"/, "seq", "describe", "a", "extra");
    await fails(EXIT.usage, /--edge must be host:port/, "seq", "list", "--edge", "nowhere");
    await fails(EXIT.usage, /--mode must be one of resp, grpc, sdk/, "bench", "--mode", "udp");
    await fails(EXIT.usage, /--resp-listen must be host:port/, "dev", "--resp-listen", "nope");
    await fails(EXIT.usage, /unknown flag --bogus/, "ledger", "--bogus", "1");
    await fails(EXIT.usage, /--ledger is required/, "edge", "--dc", "0");
    await fails(
      EXIT.usage,
      /cannot read config file .*nope.json: ENOENT/,
      "seq",
      "list",
      "--config",
      "nope.json",
    );
  });

  it("exits 3 when the server cannot be reached, 1 when a port is taken", async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    await fails(
      EXIT.unavailable,
      /cannot reach the edge at .* \(connection refused\)/,
      "next",
      "x",
      "--edge",
      dead,
    );
    const st = await cli("status", "--ledger", dead, "--edge", "off", "--edge-metrics", "off");
    expect(st.code).toBe(EXIT.unavailable);
    expect(st.err).toMatch(/no ledger node answered/);
    const taken = await cli("dev", "--data-dir", join(dir, "other"), "--ledger-listen", ledger);
    expect(taken.code).toBe(EXIT.server);
    expect(taken.err).toMatch(
      /^dispenser: 127\.0\.0\.1:\d+ \(ledger node 1\) is already in use .*choose another with --ledger-listen host:port\n$/,
    );
  });

  it("reads --config files: the command line wins over the file, the file over the environment", async () => {
    const file = join(dir, "admin.json");
    writeFileSync(file, JSON.stringify({ edge: "127.0.0.1:1", json: true }));
    const listed = await cli("seq", "list", "--config", file, "--edge", edge);
    expect(JSON.parse(listed.out)).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: "orders" })]),
    );
    await fails(EXIT.unavailable, /cannot reach the edge at 127.0.0.1:1/, "seq", "list", "--config", file);
    writeFileSync(file, JSON.stringify({ colour: "red" }));
    await fails(
      EXIT.usage,
      /config file .*admin.json: unknown key "colour"/,
      "seq",
      "list",
      "--config",
      file,
    );
    const ledgerFile = join(dir, "ledger.json");
    writeFileSync(ledgerFile, JSON.stringify({ id: 0, bootstrap: true }));
    await fails(EXIT.usage, /--id must be an integer >= 1, got "0"/, "ledger", "--config", ledgerFile);
    await fails(EXIT.usage, /--data-dir is required/, "ledger", "--config", ledgerFile, "--id", "1");
  });

  it("prints help for every command", async () => {
    const top = await cli("--help");
    expect(top.out).toMatch(/^usage: dispenser <command>/);
    expect(top.out).toMatch(/^ {2}2 {3}usage error/m);
    for (const c of [
      ["dev"],
      ["next"],
      ["parse"],
      ["status"],
      ["bench"],
      ["seq", "create"],
      ["seq", "list"],
    ]) {
      const r = await cli(...c, "--help");
      expect(r.code).toBe(0);
      expect(r.out).toContain(`usage: dispenser ${c.join(" ")}`);
      expect(r.out).toContain("Precedence: flags on the command line, then the --config file");
    }
    expect((await cli("dev", "--help")).out).toMatch(
      /--resp-listen host:port\s+.*\(default: 127.0.0.1:6380; env /,
    );
    const ledgerHelp = await cli("ledger", "--help");
    expect(ledgerHelp.out).toMatch(/^usage: dispenser ledger/);
    expect(ledgerHelp.out).toMatch(/--tick-ms .*default: 50/);
    expect(ledgerHelp.out).toContain("--config");
    expect((await cli("edge", "--help")).out).toMatch(/--resp-listen .*default: 127.0.0.1:6380/);
  });

  it("runs as a process through bin/dispenser.js with the documented exit codes", async () => {
    const ok = await bin("next", "tickets", "-n", "2", "--edge", edge);
    expect(ok).toMatchObject({ code: 0, stderr: "" });
    expect(ok.stdout.trim().split("\n")).toHaveLength(2);
    const bad = await bin("frobnicate");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(`dispenser: unknown command "frobnicate" (try 'dispenser --help')\n`);
    const missing = await bin("seq", "describe", "nosuch", "--edge", edge);
    expect(missing.code).toBe(1);
  });
});
