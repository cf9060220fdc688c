// The RESP phase: redis-benchmark rounds on the edge (GET) and on redis-server (INCR), and the
// edge's INFO, which must show as many ids generated as requests sent, all consecutive.
import { spawnSync } from "node:child_process";
import {
  CLIENTS,
  PIPELINE,
  PIPELINED_REQUESTS,
  REQUESTS,
  RESP_FLOOR_PER_SEC,
  SEQUENCE,
  runTool,
} from "./config.js";
import type { Findings } from "./measure.js";
import { compare, keep } from "./measure.js";
import type { Servers } from "./servers.js";

/** One redis-cli call (synchronous, short). */
export function redisCli(port: number, ...cmd: string[]): string {
  const r = spawnSync("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...cmd], {
    encoding: "utf8",
    timeout: 10_000,
  });
  if (r.status !== 0)
    throw new Error(`redis-cli ${cmd.join(" ")}: ${r.stderr || r.error?.message || r.status}`);
  return r.stdout.trim();
}

/** redis-benchmark --csv → requests per second. */
async function redisBenchmark(port: number, n: number, pipeline: number, cmd: string[]): Promise<number> {
  const argv = ["-h", "127.0.0.1", "-p", String(port), "-c", String(CLIENTS), "-n", String(n), "--csv"];
  if (pipeline > 1) argv.push("-P", String(pipeline));
  const timeoutMs = 20_000 + (n * 1000) / RESP_FLOOR_PER_SEC;
  const out = await runTool("redis-benchmark", "redis-benchmark", [...argv, ...cmd], timeoutMs);
  for (const line of out.split("\n")) {
    const f = line.split(",").map((x) => x.replace(/^"|"$/g, ""));
    const rps = Number(f[1]);
    if (f.length >= 2 && f[0] !== "test" && Number.isFinite(rps) && rps > 0) return rps;
  }
  throw new Error(`no requests per second in redis-benchmark's output:\n${out.slice(0, 2000)}`);
}

export interface SeqInfo {
  generated: bigint;
  wasted: bigint;
  current: bigint | undefined;
  /** The size of the next segment the edge will lease. */
  segmentSize: bigint;
}

export function seqInfo(port: number): SeqInfo {
  const text = redisCli(port, "INFO", SEQUENCE);
  const field = (k: string): string | undefined => new RegExp(`^${k}:(.*)$`, "m").exec(text)?.[1]?.trim();
  const cur = field("current");
  return {
    generated: BigInt(field("generated") ?? "0"),
    wasted: BigInt(field("wasted") ?? "0"),
    current: cur ? BigInt(cur) : undefined,
    segmentSize: BigInt(field("segment_size") ?? "0"),
  };
}

/** redis-benchmark -c CLIENTS `GET seq` on the edge against `INCR k` on redis, without and with -P. */
export async function respPhase(s: Servers, f: Findings): Promise<void> {
  // Warm-up: JIT of the edge's hot path, a first segment, redis's own start.
  await redisBenchmark(s.edgeResp, 100_000, PIPELINE, ["GET", SEQUENCE]);
  await redisBenchmark(s.redisPort, 100_000, PIPELINE, ["INCR", "k"]);
  const before = seqInfo(s.edgeResp);
  let sent = 0n;
  for (const pipeline of [1, PIPELINE]) {
    const n = pipeline === 1 ? REQUESTS : PIPELINED_REQUESTS;
    const c = await compare(
      {
        what: `RESP -c ${CLIENTS}${pipeline > 1 ? ` -P ${pipeline}` : ""}`,
        unit: "req/s",
        baseName: "redis INCR",
        aim: 1.0,
        scale: 1,
      },
      s.edge.pid,
      s.redis.pid,
      async () => {
        const rps = await redisBenchmark(s.edgeResp, n, pipeline, ["GET", SEQUENCE]);
        sent += BigInt(n);
        return { perSec: rps, ops: n };
      },
      async () => ({ perSec: await redisBenchmark(s.redisPort, n, pipeline, ["INCR", "k"]), ops: n }),
    );
    keep(f, pipeline === 1 ? "resp" : "resp-pipelined", c);
  }
  const after = seqInfo(s.edgeResp);
  const generated = after.generated - before.generated;
  const consecutive =
    before.current !== undefined &&
    after.current !== undefined &&
    after.current - before.current === generated;
  const ok = generated === sent && after.wasted === before.wasted;
  f.checks.push(
    `RESP ids: ${sent} GETs sent, ${generated} ids generated (${ok ? "equal" : "MISMATCH"}), ` +
      `current ${before.current} → ${after.current}: ` +
      (consecutive ? "consecutive, so no id was issued twice" : "NOT consecutive (a segment gap or repeats)"),
  );
  if (!ok) process.exitCode = 1;
}
