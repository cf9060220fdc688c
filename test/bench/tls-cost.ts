// What TLS costs: the same servers with TLS and without, in one run, rounds alternating.
//   - the edge's RESP: redis-benchmark GET (with --tls on the edge's TLS port);
//   - the edge's gRPC: Issue from the grpc-js load client (with channel credentials);
//   - the ledger: LeaseSegment from a LedgerClient, against a 3-node cluster in plaintext and one
//     with mutual TLS between members (Raft on its own port) and from the client.
// Throughput and the servers' CPU per operation, medians of the rounds, ratios TLS/plaintext.
// Certificates come from deploy/certs/make-dev-certs.sh. Traffic stays on 127.0.0.1.
//
//   pnpm bench:tls [-- --rounds 3 --requests 100000 --clients 50 --grpc-duration 3
//                     --grpc-concurrency 64 --ledger-duration 4 --ledger-concurrency 16]
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs, promisify } from "node:util";
import { LedgerClient } from "@dispenser/ledger";
import { Redis } from "ioredis";
import { createRequest } from "../support/ledger-helpers.js";
import type { Child } from "./support.js";
import {
  CpuSampler,
  Reaper,
  cpuSeconds,
  fmt,
  freePort,
  log,
  median,
  posInt,
  runLoad,
  spawnBounded,
  table,
  until,
} from "./support.js";

const REPO = resolve(import.meta.dirname, "..", "..");
const LEDGER_MAIN = join(REPO, "packages", "ledger", "src", "main.ts");
const EDGE_MAIN = join(REPO, "packages", "edge", "src", "main.ts");
const GRPC_CLIENT = join(REPO, "test", "bench", "grpc-load-client.ts");
const RECIPE = join(REPO, "deploy", "certs", "make-dev-certs.sh");
const exec = promisify(execFile);

const argv = process.argv.slice(2);
const { values: a } = parseArgs({
  args: argv[0] === "--" ? argv.slice(1) : argv,
  options: {
    rounds: { type: "string", default: "3" },
    requests: { type: "string", default: "100000" },
    clients: { type: "string", default: "50" },
    "grpc-duration": { type: "string", default: "3" },
    "grpc-concurrency": { type: "string", default: "64" },
    "ledger-duration": { type: "string", default: "4" },
    "ledger-concurrency": { type: "string", default: "16" },
  },
});
const ROUNDS = posInt("rounds", a.rounds, 1, 21);
const REQUESTS = posInt("requests", a.requests, 1_000, 10_000_000);
const CLIENTS = posInt("clients", a.clients, 1, 1_000);
const GRPC_SECONDS = posInt("grpc-duration", a["grpc-duration"], 1, 120);
const GRPC_CONCURRENCY = posInt("grpc-concurrency", a["grpc-concurrency"], 1, 4_096);
const LEDGER_SECONDS = posInt("ledger-duration", a["ledger-duration"], 1, 120);
const LEDGER_CONCURRENCY = posInt("ledger-concurrency", a["ledger-concurrency"], 1, 1_024);
const SEQUENCE = "seq";

const reaper = new Reaper(45 * 60_000);
const dir = reaper.tmpdir("bench-tls-");
const certs = join(dir, "certs");
const spawnNode = (tag: string, args: string[]): Child =>
  spawnBounded(reaper, REPO, tag, process.execPath, ["--import", "tsx", ...args]);
const cert = (name: string): string => join(certs, `${name}.pem`);

interface Figure {
  perSec: number;
  /** Server CPU per operation, µs. */
  cpuUs: number;
}
type Mode = "plain" | "tls";
const MODES: readonly Mode[] = ["plain", "tls"];

/**
 * `rounds` of `measure(mode)`, the two modes alternating (and which goes first, too), after one
 * unrecorded round of each: the servers' JIT warms up before anything counts.
 */
async function alternate(
  what: string,
  measure: (m: Mode) => Promise<Figure>,
): Promise<Record<Mode, Figure[]>> {
  const out: Record<Mode, Figure[]> = { plain: [], tls: [] };
  for (const m of MODES) {
    const f = await measure(m);
    log(`${what} warm-up ${m}: ${fmt(f.perSec, 0)}/s (not counted)`);
  }
  for (let r = 0; r < ROUNDS; r++) {
    for (const m of r % 2 === 0 ? MODES : [...MODES].reverse()) {
      const f = await measure(m);
      out[m].push(f);
      log(`${what} round ${r + 1} ${m}: ${fmt(f.perSec, 0)}/s, ${fmt(f.cpuUs)} µs CPU per op`);
    }
  }
  return out;
}

async function waitPort(port: number, c: Child): Promise<void> {
  await until(`${c.tag} to listen on ${port}`, 30_000, async () => {
    if (c.proc.exitCode !== null) throw new Error(`${c.tag} exited:\n${c.output.join("")}`);
    const r = new Redis({ port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    r.on("error", () => undefined);
    try {
      await r.connect();
      return true;
    } catch {
      return undefined;
    } finally {
      r.disconnect();
    }
  });
}

async function edgeRows(): Promise<string[][]> {
  const ledgerAddr = `127.0.0.1:${await freePort()}`;
  spawnNode("edge-ledger", [
    LEDGER_MAIN,
    "--id=1",
    `--data-dir=${join(dir, "edge-ledger")}`,
    `--peers=1=${ledgerAddr}`,
    "--bootstrap",
    "--log-level=warn",
  ]);
  const ports = { plain: { resp: 0, grpc: 0 }, tls: { resp: 0, grpc: 0 } };
  const edges = {} as Record<Mode, Child>;
  for (const m of MODES) {
    ports[m] = { resp: await freePort(), grpc: await freePort() };
    const tls =
      m === "tls"
        ? ["--tls-cert", cert("edge-e1"), "--tls-key", cert("edge-e1-key"), "--resp-listen=off"]
        : [];
    edges[m] = spawnNode(`edge-${m}`, [
      EDGE_MAIN,
      `--ledger=${ledgerAddr}`,
      m === "tls"
        ? `--resp-tls-listen=127.0.0.1:${ports[m].resp}`
        : `--resp-listen=127.0.0.1:${ports[m].resp}`,
      `--grpc-listen=127.0.0.1:${ports[m].grpc}`,
      "--log-level=warn",
      ...tls,
    ]);
  }
  await waitPort(ports.plain.resp, edges.plain);
  const r = new Redis({ port: ports.plain.resp, lazyConnect: true });
  await until("the sequence to exist", 30_000, async () => {
    const e = await (r.status === "ready" ? Promise.resolve() : r.connect())
      .then(() => r.call("HSET", SEQUENCE, "type", "3"))
      .then(
        () => undefined,
        (x: Error) => x,
      );
    return e === undefined || /exists/.test(e.message) ? true : undefined;
  });
  r.disconnect();
  const tlsArgs = (m: Mode): string[] => (m === "tls" ? ["--tls", "--cacert", cert("ca")] : []);
  // The TLS edge must answer before its rounds: one GET through redis-benchmark's own path.
  await until("the TLS edge", 30_000, async () =>
    exec("redis-benchmark", [
      "-p",
      String(ports.tls.resp),
      ...tlsArgs("tls"),
      "-n",
      "1",
      "-c",
      "1",
      "--csv",
      "GET",
      SEQUENCE,
    ]).then(
      () => true,
      () => undefined,
    ),
  );

  const resp = await alternate("RESP GET", async (m) => {
    const before = cpuSeconds(edges[m].pid)!;
    const { stdout } = await exec(
      "redis-benchmark",
      [
        "-h",
        "127.0.0.1",
        "-p",
        String(ports[m].resp),
        ...tlsArgs(m),
        "-c",
        String(CLIENTS),
        "-n",
        String(REQUESTS),
        "--csv",
        "GET",
        SEQUENCE,
      ],
      { timeout: 600_000 },
    );
    const cpu = cpuSeconds(edges[m].pid)! - before;
    const line = stdout.split("\n").find((l) => /^"GET/.test(l));
    const perSec = Number(line?.split(",")[1]?.replace(/"/g, ""));
    if (!Number.isFinite(perSec) || perSec <= 0) throw new Error(`redis-benchmark said:\n${stdout}`);
    return { perSec, cpuUs: (cpu * 1e6) / REQUESTS };
  });

  const grpc = await alternate("gRPC Issue", async (m) => {
    const before = cpuSeconds(edges[m].pid)!;
    const { stdout } = await exec(
      process.execPath,
      [
        "--import",
        "tsx",
        GRPC_CLIENT,
        "--target",
        `127.0.0.1:${ports[m].grpc}`,
        "--method",
        "Issue",
        "--concurrency",
        String(GRPC_CONCURRENCY),
        "--duration",
        String(GRPC_SECONDS),
        "--warmup",
        "1",
        "--sequence",
        SEQUENCE,
        ...(m === "tls" ? ["--ca", cert("ca")] : []),
      ],
      { cwd: REPO, timeout: (GRPC_SECONDS + 60) * 1000 },
    );
    const cpu = cpuSeconds(edges[m].pid)! - before;
    const res = JSON.parse(stdout.trim().split("\n").pop()!) as {
      calls: number;
      seconds: number;
      errors: number;
      firstError?: string;
    };
    if (res.errors > 0) throw new Error(`gRPC ${m}: ${res.errors} errors (${res.firstError})`);
    const perSec = res.calls / res.seconds;
    // The CPU covers the warm-up second too, taken to run at the measured rate.
    return { perSec, cpuUs: (cpu * 1e6) / (perSec * (res.seconds + 1)) };
  });
  return [
    row("edge RESP GET", `-c ${CLIENTS}`, resp),
    row("edge gRPC Issue", `${GRPC_CONCURRENCY} in flight`, grpc),
  ];
}

async function ledgerRows(): Promise<string[][]> {
  const clusters = {} as Record<Mode, { client: LedgerClient; nodes: Child[] }>;
  for (const m of MODES) {
    const ids = [1, 2, 3];
    const client = await Promise.all(ids.map(() => freePort()));
    const peer = m === "tls" ? await Promise.all(ids.map(() => freePort())) : client;
    const peers = ids.map((i) => `${i}=127.0.0.1:${client[i - 1]}`).join(",");
    const nodes = ids.map((i) =>
      spawnNode(`ledger-${m}-${i}`, [
        LEDGER_MAIN,
        `--id=${i}`,
        `--cluster-id=bench-tls`,
        `--data-dir=${join(dir, `ledger-${m}-${i}`)}`,
        `--listen=127.0.0.1:${client[i - 1]}`,
        `--peers=${peers}`,
        "--bootstrap",
        "--log-level=warn",
        ...(m === "tls"
          ? [
              `--peer-listen=127.0.0.1:${peer[i - 1]}`,
              `--peer-addresses=${ids.map((j) => `${j}=127.0.0.1:${peer[j - 1]}`).join(",")}`,
              `--tls-ca=${cert("ca")}`,
              `--tls-cert=${cert(`ledger-${i}`)}`,
              `--tls-key=${cert(`ledger-${i}-key`)}`,
            ]
          : []),
      ]),
    );
    const lc = new LedgerClient({
      endpoints: ids.map((i) => `127.0.0.1:${client[i - 1]}`),
      totalTimeoutMs: 20_000,
      ...(m === "tls"
        ? {
            tls: {
              ca: readFileSync(cert("ca")),
              cert: readFileSync(cert("admin-bench")),
              key: readFileSync(cert("admin-bench-key")),
            },
          }
        : {}),
    });
    await until(`the ${m} ledger's leader`, 60_000, async () =>
      lc.call("createSequence", createRequest(SEQUENCE)).then(
        () => true,
        (e: { code?: number }) => (e.code === 6 ? true : undefined), // ALREADY_EXISTS
      ),
    );
    clusters[m] = { client: lc, nodes };
  }
  let n = 0;
  const lease = await alternate("ledger LeaseSegment", async (m) => {
    const { client, nodes } = clusters[m];
    const sampler = new CpuSampler(() => new Map(nodes.map((c) => [c.tag, c.pid])));
    const r = await runLoad(
      LEDGER_CONCURRENCY,
      1_000,
      LEDGER_SECONDS * 1_000,
      () =>
        client.call("leaseSegment", { sequence: SEQUENCE, dc: 0, size: 100n, requestId: `r${n++}`, kind: 0 }),
      { sampler },
    );
    if (r.errors > 0) throw new Error(`ledger ${m}: ${r.errors} errors (${r.firstError})`);
    // CPU of the three nodes together, per committed lease.
    const cores = [...(r.cpu?.perProcess ?? new Map<string, number>())]
      .filter(([tag]) => tag.startsWith("ledger-"))
      .reduce((s, [, pct]) => s + pct / 100, 0);
    return { perSec: r.opsPerSec, cpuUs: (cores * 1e6) / r.opsPerSec };
  });
  for (const m of MODES) clusters[m].client.close();
  return [row("ledger LeaseSegment", `${LEDGER_CONCURRENCY} in flight, 3 nodes`, lease)];
}

function row(what: string, load: string, f: Record<Mode, Figure[]>): string[] {
  const med = (m: Mode, k: keyof Figure): number => median(f[m].map((x) => x[k]));
  return [
    what,
    load,
    fmt(med("plain", "perSec"), 0),
    fmt(med("tls", "perSec"), 0),
    `${fmt(med("tls", "perSec") / med("plain", "perSec"), 2)}×`,
    fmt(med("plain", "cpuUs")),
    fmt(med("tls", "cpuUs")),
    `${fmt(med("tls", "cpuUs") / med("plain", "cpuUs"), 2)}×`,
  ];
}

async function main(): Promise<void> {
  await exec("bash", [
    RECIPE,
    certs,
    "bench-tls",
    "ledger-1",
    "ledger-2",
    "ledger-3",
    "edge-e1",
    "admin-bench",
  ]);
  const rows = [...(await edgeRows()), ...(await ledgerRows())];
  console.log(
    `\nTLS against plaintext, ${ROUNDS} rounds each (medians; the servers' CPU per operation)\n` +
      table([
        ["path", "load", "plain/s", "TLS/s", "TLS/plain", "plain µs CPU", "TLS µs CPU", "TLS/plain"],
        ...rows,
      ]),
  );
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`bench:tls: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  },
);
