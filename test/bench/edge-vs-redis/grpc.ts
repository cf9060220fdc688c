// The gRPC phases: Issue and IssueBatch load on the edge and on the bare server (h2load with a fixed
// request body, else the grpc-js client in its own process), and the ids the edge generated for it.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { DispenserClient } from "@dispenser/proto";
import { credentials } from "@grpc/grpc-js";
import { log, withTimeout } from "../support.js";
import {
  BATCH_COUNTS,
  GRPC_CLIENT_MAIN,
  GRPC_CONNECTIONS,
  GRPC_SECONDS,
  GRPC_STREAMS,
  HAVE_H2LOAD,
  SEQUENCE,
  WARMUP_SECONDS,
  runTool,
} from "./config.js";
import type { Findings, RoundResult } from "./measure.js";
import { compare, keep } from "./measure.js";
import { seqInfo } from "./resp.js";
import type { Servers } from "./servers.js";

/** A gRPC request body: the 5-byte length prefix, then the protobuf message. */
function grpcFrame(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

function issueRequest(): Buffer {
  const name = Buffer.from(SEQUENCE);
  return Buffer.concat([Buffer.from([0x0a, name.length]), name]);
}

function issueBatchRequest(count: number): Buffer {
  const varint: number[] = [];
  for (let v = count; ; v >>>= 7) {
    if (v < 0x80) {
      varint.push(v);
      break;
    }
    varint.push((v & 0x7f) | 0x80);
  }
  return Buffer.concat([issueRequest(), Buffer.from([0x10, ...varint])]);
}

interface GrpcRound {
  perSec: number;
  /** Calls answered (HTTP/2 level) in the measured window. */
  calls: number;
}

/** Unary calls/s of one method with a fixed body: h2load, else the grpc-js client. */
async function grpcLoad(
  port: number,
  method: "Issue" | "IssueBatch",
  count: number,
  bodyFile: string,
): Promise<GrpcRound> {
  const timeoutMs = (GRPC_SECONDS + WARMUP_SECONDS + 30) * 1000;
  if (HAVE_H2LOAD) {
    const out = await runTool(
      "h2load",
      "h2load",
      [
        "-c",
        String(GRPC_CONNECTIONS),
        "-m",
        String(GRPC_STREAMS),
        "-t",
        "1",
        "-D",
        String(GRPC_SECONDS),
        "--warm-up-time",
        String(WARMUP_SECONDS),
        "-d",
        bodyFile,
        "-H",
        "content-type: application/grpc",
        "-H",
        "te: trailers",
        `http://127.0.0.1:${port}/dispenser.edge.v1.Dispenser/${method}`,
      ],
      timeoutMs,
    );
    const fin = /finished in ([\d.]+)s, ([\d.]+) req\/s/.exec(out);
    const req =
      /requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(out);
    if (!fin || !req) throw new Error(`unexpected h2load output:\n${out.slice(0, 2000)}`);
    if (Number(req[3]) + Number(req[4]) > 0)
      throw new Error(`h2load: failed or errored requests:\n${out.slice(0, 2000)}`);
    return { perSec: Number(fin[2]), calls: Number(req[2]) };
  }
  const out = await runTool(
    "grpc-load-client",
    process.execPath,
    [
      "--import",
      "tsx",
      GRPC_CLIENT_MAIN,
      "--target",
      `127.0.0.1:${port}`,
      "--method",
      method,
      "--count",
      String(count),
      "--concurrency",
      String(GRPC_CONNECTIONS * GRPC_STREAMS),
      "--duration",
      String(GRPC_SECONDS),
      "--warmup",
      String(WARMUP_SECONDS),
      "--sequence",
      SEQUENCE,
    ],
    timeoutMs,
  );
  const r = JSON.parse(out.trim().split("\n").pop() ?? "{}") as {
    calls?: number;
    seconds?: number;
    errors?: number;
    firstError?: string;
  };
  if ((r.errors ?? 0) > 0) throw new Error(`grpc-load-client: ${r.errors} errors (first: ${r.firstError})`);
  return { perSec: (r.calls ?? 0) / (r.seconds ?? 1), calls: r.calls ?? 0 };
}

/** The calls of a round, the warm-up taken to run at the measured rate (its CPU is counted too). */
function grpcOps(r: GrpcRound): RoundResult {
  return { perSec: r.perSec, ops: r.perSec * (GRPC_SECONDS + WARMUP_SECONDS) };
}

/** One Issue through grpc-js, to check the server answers what h2load will ask (h2load sees HTTP/2 only). */
async function checkIssue(port: number, what: string): Promise<string> {
  const client = new DispenserClient(`127.0.0.1:${port}`, credentials.createInsecure());
  try {
    const id = await withTimeout(
      new Promise<string>((resolve, reject) =>
        client.issue({ sequence: SEQUENCE }, (err, res) => (err ? reject(err) : resolve(res.str))),
      ),
      10_000,
      `Issue on ${what}`,
    );
    if (!/^\d+$/.test(id)) throw new Error(`Issue on ${what} answered "${id}"`);
    return id;
  } finally {
    client.close();
  }
}

/** Issue calls/s, edge against the bare server; every answer must have carried an id. */
export async function grpcPhase(s: Servers, bodies: string, f: Findings): Promise<void> {
  const edgeId = await checkIssue(s.edgeGrpc, "the edge");
  const bareId = await checkIssue(s.bareGrpc, "the bare server");
  log(`gRPC Issue answers: edge "${edgeId}", bare server "${bareId}"`);
  const body = join(bodies, "issue.bin");
  writeFileSync(body, grpcFrame(issueRequest()));
  let answered = 0;
  const before = seqInfo(s.edgeResp);
  const c = await compare(
    { what: "gRPC Issue", unit: "calls/s", baseName: "bare grpc-js", aim: 0.9, scale: 1 },
    s.edge.pid,
    s.bare.pid,
    async () => {
      const r = await grpcLoad(s.edgeGrpc, "Issue", 1, body);
      answered += r.calls;
      return grpcOps(r);
    },
    async () => grpcOps(await grpcLoad(s.bareGrpc, "Issue", 1, body)),
  );
  keep(f, "grpc", c);
  const generated = seqInfo(s.edgeResp).generated - before.generated;
  // h2load sees HTTP/2 statuses only: a gRPC error would still count as a success there.
  const ok = generated >= BigInt(answered);
  f.checks.push(
    `gRPC Issue: ${answered} calls answered in the measured windows, ${generated} ids generated ` +
      `(with warm-up) — ${ok ? "every answer carried an id" : "FEWER IDS THAN ANSWERS: some calls failed"}`,
  );
  if (!ok) process.exitCode = 1;
}

/** IssueBatch ids/s for each of --batch-counts, edge against the bare server. */
export async function batchPhase(s: Servers, bodies: string, f: Findings): Promise<void> {
  for (const count of BATCH_COUNTS) {
    const body = join(bodies, `batch-${count}.bin`);
    writeFileSync(body, grpcFrame(issueBatchRequest(count)));
    let answered = 0;
    const before = seqInfo(s.edgeResp);
    const c = await compare(
      { what: `gRPC IssueBatch ${count}`, unit: "ids/s", baseName: "bare grpc-js", aim: 0, scale: count },
      s.edge.pid,
      s.bare.pid,
      async () => {
        const r = await grpcLoad(s.edgeGrpc, "IssueBatch", count, body);
        answered += r.calls;
        return grpcOps(r);
      },
      async () => grpcOps(await grpcLoad(s.bareGrpc, "IssueBatch", count, body)),
    );
    keep(f, `batch-${count}`, c);
    const after = seqInfo(s.edgeResp);
    const generated = after.generated - before.generated;
    const ok = generated >= BigInt(answered) * BigInt(count);
    f.checks.push(
      `gRPC IssueBatch ${count}: ${answered} calls answered, ${generated} ids generated — ` +
        (ok ? "every answer carried its ids" : "FEWER IDS THAN ANSWERED: some calls failed") +
        `; segment size now ${after.segmentSize}`,
    );
    if (!ok) process.exitCode = 1;
  }
}
