// `dispenser bench`: drives an edge over RESP (GET, or GETN with --batch), gRPC (Issue, or
// IssueBatch) or the client SDK (next, or nextBatch: ids from ranges the SDK leases through the
// edge and hands out in this process) for --duration seconds with --concurrency callers, prints a
// live progress line (rewritten in place on a terminal, one line per second otherwise) and a
// summary at the end.
import { performance } from "node:perf_hooks";
import { createDispenser } from "@dispenser/client";
import { DispenserClient, MAX_ISSUE_BATCH } from "@dispenser/proto";
import type { ServiceError } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import { Redis } from "ioredis";
import { CliError, EXIT } from "../errors.js";
import type { CommandSpec, Flags } from "../flags.js";
import { parseFlags } from "../flags.js";
import { table, toJson } from "../format.js";
import { batchIds, grpcError } from "../grpc.js";
import type { Io } from "../io.js";
import type { EdgeAccess } from "../credentials.js";
import { EDGE_CREDENTIAL_FLAGS, edgeAccess } from "../credentials.js";
import { DEFAULT_EDGE } from "./admin.js";
import { DEV_DEFAULTS } from "../defaults.js";

export const BENCH: CommandSpec = {
  name: "bench",
  args: "[sequence]",
  summary: "Draws ids from an edge as fast as it will go and reports ids/s and latency.",
  flags: [
    {
      name: "mode",
      value: "resp|grpc|sdk",
      default: "resp",
      help: "RESP (ioredis), gRPC, or the client SDK (ranges leased through the edge, drawn locally)",
    },
    {
      name: "resp",
      value: "host:port",
      default: DEV_DEFAULTS.respListen,
      env: "DISPENSER_RESP",
      help: "the edge's RESP address (mode resp)",
    },
    {
      name: "password",
      value: "secret",
      env: "DISPENSER_RESP_PASSWORD",
      help: "RESP AUTH password (default: none)",
    },
    {
      name: "edge",
      value: "host:port",
      default: DEFAULT_EDGE,
      env: "DISPENSER_EDGE",
      help: "the edge's gRPC address (modes grpc and sdk, and creating the sequence)",
    },
    { name: "duration", value: "seconds", default: "10", help: "how long to run" },
    { name: "concurrency", value: "N", default: "16", help: "callers with a request in flight, 1..4096" },
    { name: "connections", value: "N", default: "4", help: "RESP connections the callers share, 1..256" },
    {
      name: "batch",
      value: "N",
      default: "1",
      help: `ids per request, 1..${MAX_ISSUE_BATCH}: 1 uses GET/Issue, more GETN/IssueBatch`,
    },
    {
      name: "create",
      boolean: true,
      default: "true",
      help: "create the sequence (type 3) when it does not exist; --create=false to refuse",
    },
    { name: "check", boolean: true, help: "keep every id and count repeats (costs memory)" },
    { name: "json", boolean: true, help: "print the summary as JSON" },
    ...EDGE_CREDENTIAL_FLAGS,
  ],
  notes: "The sequence defaults to 'bench'. Exit code 1 when no id could be drawn or an id repeated.",
};

const MAX_SAMPLES = 1_000_000;

/** Latencies (ms) of a window and of the whole run; the run keeps a uniform sample. */
class Latencies {
  private readonly all: number[] = [];
  private seen = 0;
  window: number[] = [];

  add(ms: number): void {
    this.window.push(ms);
    this.seen++;
    if (this.all.length < MAX_SAMPLES) this.all.push(ms);
    else {
      const i = Math.floor(Math.random() * this.seen);
      if (i < MAX_SAMPLES) this.all[i] = ms;
    }
  }

  static quantiles(xs: number[]): { p50: number; p90: number; p99: number; max: number } {
    if (xs.length === 0) return { p50: 0, p90: 0, p99: 0, max: 0 };
    const s = Float64Array.from(xs).sort();
    const q = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
    return { p50: q(0.5), p90: q(0.9), p99: q(0.99), max: s[s.length - 1]! };
  }

  total(): ReturnType<typeof Latencies.quantiles> {
    return Latencies.quantiles(this.all);
  }
}

type Draw = () => Promise<readonly string[]>;

interface Target {
  readonly draw: Draw;
  readonly describe: string;
  close(): void | Promise<void>;
}

function hostPort(f: Flags, flag: string): { host: string; port: number } {
  const v = f.required(flag);
  const i = v.lastIndexOf(":");
  const port = Number(v.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 1 || port > 65535)
    throw new CliError(`--${flag} must be host:port, got "${v}"`, EXIT.usage, "try 'dispenser bench --help'");
  return { host: v.slice(0, i), port };
}

async function respTarget(
  f: Flags,
  a: EdgeAccess,
  seq: string,
  batch: number,
  conns: number,
): Promise<Target> {
  const { host, port } = hostPort(f, "resp");
  // A token (user:secret) logs in as that user, as it does over gRPC; else --password as `default`.
  const token = a.sdk.token;
  const colon = token?.indexOf(":") ?? -1;
  const login =
    token !== undefined && colon > 0
      ? { username: token.slice(0, colon), password: token.slice(colon + 1) }
      : f.str("password") !== undefined
        ? { password: f.str("password")! }
        : {};
  const tls = a.sdk.tls;
  const clients = Array.from(
    { length: conns },
    () =>
      new Redis({
        host,
        port,
        ...login,
        ...(tls
          ? {
              tls: {
                ...(tls.ca ? { ca: tls.ca } : {}),
                ...(tls.cert ? { cert: tls.cert, key: tls.key } : {}),
              },
            }
          : {}),
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        enableOfflineQueue: false,
        retryStrategy: () => null,
      }),
  );
  for (const c of clients) c.on("error", () => undefined);
  try {
    await Promise.all(clients.map((c) => c.connect()));
  } catch (e) {
    for (const c of clients) c.disconnect();
    throw new CliError(
      `cannot reach the edge's RESP server at ${host}:${port} (${(e as Error).message})`,
      EXIT.unavailable,
    );
  }
  const probe = clients[0]!;
  const exists = await probe.call("EXISTS", seq).catch(() => 0);
  if (exists !== 1 && f.bool("create")) {
    await probe.call("HSET", seq, "type", "3").catch((e: Error) => {
      if (!/exists/.test(e.message)) throw new CliError(`creating ${seq}: ${e.message}`, EXIT.server);
    });
  }
  let next = 0;
  const pick = (): Redis => clients[next++ % clients.length]!;
  const draw: Draw =
    batch === 1
      ? async () => {
          const v = await pick().get(seq);
          return v === null ? [] : [v];
        }
      : async () => (await pick().call("GETN", seq, String(batch))) as string[];
  return {
    draw,
    describe: `resp ${host}:${port} ${batch === 1 ? "GET" : `GETN ${batch}`}, ${conns} connections`,
    close: () => clients.forEach((c) => c.disconnect()),
  };
}

function grpcTarget(f: Flags, a: EdgeAccess, seq: string, batch: number): Target {
  const address = f.required("edge");
  const c = new DispenserClient(address, a.channel);
  const call = <Res>(invoke: (cb: (e: ServiceError | null, r: Res) => void) => void): Promise<Res> =>
    new Promise((resolve, reject) =>
      invoke((e, r) => (e ? reject(grpcError(e, "the edge", address, 5_000)) : resolve(r))),
    );
  const deadline = (): { deadline: number } => ({ deadline: Date.now() + 5_000 });
  const draw: Draw =
    batch === 1
      ? async () => [
          (await call<{ str: string }>((cb) => c.issue({ sequence: seq }, a.metadata(), deadline(), cb))).str,
        ]
      : async () =>
          batchIds(
            await call((cb) => c.issueBatch({ sequence: seq, count: batch }, a.metadata(), deadline(), cb)),
          ).map(String);
  return {
    draw,
    describe: `grpc ${address} ${batch === 1 ? "Issue" : `IssueBatch ${batch}`}`,
    close: () => c.close(),
  };
}

function sdkTarget(f: Flags, a: EdgeAccess, seq: string, batch: number): Target {
  const address = f.required("edge");
  const d = createDispenser({ endpoints: [address], sequence: seq, ...a.sdk });
  const draw: Draw =
    batch === 1 ? async () => [String(await d.next())] : async () => (await d.nextBatch(batch)).map(String);
  return {
    draw,
    describe: `sdk via ${address} ${batch === 1 ? "next()" : `nextBatch(${batch})`}`,
    close: () => d.close(),
  };
}

async function ensureSequence(f: Flags, a: EdgeAccess, seq: string): Promise<void> {
  const address = f.required("edge");
  const c = new DispenserClient(address, a.channel);
  try {
    await new Promise<void>((resolve, reject) =>
      c.describeSequence({ name: seq }, a.metadata(), { deadline: Date.now() + 5_000 }, (e) => {
        if (!e) return resolve();
        if (e.code !== status.NOT_FOUND || !f.bool("create"))
          return reject(grpcError(e, "the edge", address, 5_000));
        c.createSequence(
          {
            sequence: {
              name: seq,
              type: 3,
              layout: 0,
              ordering: 0,
              autoDisk: 0,
              revision: 0n,
              createdAtMs: 0n,
              keyFingerprint: "",
            },
          },
          a.metadata(),
          { deadline: Date.now() + 5_000 },
          (e2) =>
            e2 && e2.code !== status.ALREADY_EXISTS
              ? reject(grpcError(e2, "the edge", address, 5_000))
              : resolve(),
        );
      }),
    );
  } finally {
    c.close();
  }
}

const fmtInt = (n: number): string => Math.round(n).toLocaleString("en-US");
const fmtMs = (ms: number): string => (ms < 1 ? ms.toFixed(3) : ms < 100 ? ms.toFixed(2) : ms.toFixed(0));

export async function bench(argv: string[], io: Io): Promise<number> {
  const f = parseFlags(BENCH, argv, io.env);
  const seq = f.positionals[0] ?? "bench";
  f.noMoreThan(1);
  const mode = f.oneOf("mode", ["resp", "grpc", "sdk"] as const)!;
  const durationS = f.seconds("duration", 86_400)!;
  const concurrency = f.int("concurrency", 1, 4096)!;
  const batch = f.int("batch", 1, MAX_ISSUE_BATCH)!;
  const conns = Math.min(f.int("connections", 1, 256)!, concurrency);
  const check = f.bool("check");
  const json = f.bool("json");

  let target: Target;
  const access = edgeAccess(f, io.env);
  if (mode === "resp") target = await respTarget(f, access, seq, batch, conns);
  else {
    await ensureSequence(f, access, seq);
    target = mode === "grpc" ? grpcTarget(f, access, seq, batch) : sdkTarget(f, access, seq, batch);
  }

  const lat = new Latencies();
  let ids = 0;
  let windowIds = 0;
  let requests = 0;
  let errors = 0;
  let windowErrors = 0;
  let firstError: string | undefined;
  let repeats = 0;
  const seen = check ? new Set<string>() : undefined;
  const started = performance.now();
  const until = started + durationS * 1000;

  // One line per window: ids/s is the window's count over its own length, so the last, partial
  // window reads right too. It is printed when it is the only one or long enough to mean something.
  let windowStart = started;
  let lines = 0;
  const progress = (final: boolean): void => {
    const now = performance.now();
    const windowS = (now - windowStart) / 1000;
    if (final && lines > 0 && windowS < 0.25) return;
    const q = Latencies.quantiles(lat.window);
    const t = (now - started) / 1000;
    const rate = windowS > 0 ? windowIds / windowS : 0;
    const line =
      `[${t.toFixed(0).padStart(4)}s] ${fmtInt(rate).padStart(11)} ids/s  ` +
      `p50 ${fmtMs(q.p50)} ms  p99 ${fmtMs(q.p99)} ms  errors ${windowErrors}`;
    if (!json) io.out(io.isTTY ? `\r${line}\x1b[K` : `${line}\n`);
    lines++;
    lat.window = [];
    windowIds = 0;
    windowErrors = 0;
    windowStart = now;
  };
  const ticker = setInterval(() => progress(false), 1000);

  const worker = async (): Promise<void> => {
    while (performance.now() < until) {
      const t0 = performance.now();
      try {
        const got = await target.draw();
        lat.add(performance.now() - t0);
        requests++;
        ids += got.length;
        windowIds += got.length;
        if (seen) {
          for (const id of got) {
            if (seen.has(id)) repeats++;
            else seen.add(id);
          }
        }
      } catch (e) {
        errors++;
        windowErrors++;
        firstError ??= e instanceof Error ? e.message : String(e);
        // Keep failing callers from spinning: an unreachable edge fails in microseconds.
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    clearInterval(ticker);
    progress(true);
    await target.close();
  }
  if (io.isTTY && !json) io.out("\n");
  const elapsedS = (performance.now() - started) / 1000;
  const q = lat.total();
  const summary = {
    target: target.describe,
    sequence: seq,
    concurrency,
    batch,
    durationS: Number(elapsedS.toFixed(3)),
    requests,
    ids,
    idsPerSecond: Math.round(ids / elapsedS),
    latencyMs: { p50: q.p50, p90: q.p90, p99: q.p99, max: q.max },
    errors,
    ...(firstError !== undefined ? { firstError } : {}),
    ...(check ? { repeats } : {}),
  };
  if (json) io.out(toJson(summary) + "\n");
  else
    io.out(
      "\n" +
        table(
          ["", ""],
          [
            ["target", summary.target],
            ["sequence", seq],
            ["callers", `${concurrency}, ${batch} id${batch === 1 ? "" : "s"} per request`],
            ["duration", `${elapsedS.toFixed(1)} s`],
            ["requests", fmtInt(requests)],
            ["ids", fmtInt(ids)],
            ["ids/s", fmtInt(summary.idsPerSecond)],
            [
              "latency",
              `p50 ${fmtMs(q.p50)} ms, p90 ${fmtMs(q.p90)} ms, p99 ${fmtMs(q.p99)} ms, max ${fmtMs(q.max)} ms`,
            ],
            ["errors", errors === 0 ? "0" : `${fmtInt(errors)} (first: ${firstError})`],
            ...(check ? [["repeated ids", String(repeats)]] : []),
          ],
        ).replace(/^\s*\n/, ""),
    );
  if (ids === 0)
    throw new CliError(`no id was drawn${firstError !== undefined ? `: ${firstError}` : ""}`, EXIT.server);
  if (repeats > 0) throw new CliError(`${repeats} ids were issued twice`, EXIT.server);
  return 0;
}
