// The processes under test: a one-node ledger, the edge leasing from it (with --edge-redis its own
// Redis Cluster too), redis-server and the bare gRPC server; started, waited for and stopped.
import { join } from "node:path";
import { RedisCluster } from "../../support/redis-cluster.js";
import type { Child } from "../support.js";
import { announcedPort, freePort, posInt, until } from "../support.js";
import {
  BARE_GRPC_MAIN,
  EDGE_MAIN,
  LEDGER_MAIN,
  PROFILE_DIR,
  RUN_TAG,
  SEGMENT_ARGS,
  SEQUENCE,
  args,
  reaper,
  spawnBounded,
} from "./config.js";
import { redisCli } from "./resp.js";

export interface Servers {
  /** The edge's DC plane (--edge-redis). */
  plane: RedisCluster | undefined;
  ledger: Child;
  edge: Child;
  redis: Child;
  bare: Child;
  edgeResp: number;
  edgeGrpc: number;
  redisPort: number;
  bareGrpc: number;
  dir: string;
}

export async function startServers(): Promise<Servers> {
  const dir = reaper.tmpdir("bench-edge-");
  const [ledgerPort, edgeResp, edgeGrpc, redisPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const ledgerAddr = `127.0.0.1:${ledgerPort}`;
  const ledger = spawnBounded("ledger", process.execPath, [
    "--import",
    "tsx",
    LEDGER_MAIN,
    "--id",
    "1",
    "--cluster-id",
    `bench-edge-${RUN_TAG}`,
    "--data-dir",
    join(dir, "ledger"),
    "--listen",
    ledgerAddr,
    "--peers",
    `1=${ledgerAddr}`,
    "--bootstrap",
    "--log-level",
    "warn",
  ]);
  const profileArgs = PROFILE_DIR ? ["--cpu-prof", "--cpu-prof-dir", PROFILE_DIR] : [];
  let plane: RedisCluster | undefined;
  const planeArgs: string[] = [];
  if (args["edge-redis"]) {
    plane = new RedisCluster({ nodeTimeoutMs: 3_000 });
    await plane.start();
    planeArgs.push(
      "--redis",
      plane
        .nodes()
        .map((n) => `${n.host}:${n.port}`)
        .join(","),
    );
    if (args["reserve-seconds"] !== undefined)
      planeArgs.push(
        "--reserve-seconds",
        String(posInt("reserve-seconds", args["reserve-seconds"], 0, 86_400)),
      );
  }
  const edge = spawnBounded("edge", process.execPath, [
    ...profileArgs,
    "--import",
    "tsx",
    EDGE_MAIN,
    "--ledger",
    ledgerAddr,
    "--resp-listen",
    `127.0.0.1:${edgeResp}`,
    "--grpc-listen",
    `127.0.0.1:${edgeGrpc}`,
    "--log-level",
    "warn",
    ...planeArgs,
  ]);
  const redis = spawnBounded("redis-server", "redis-server", [
    "--port",
    String(redisPort),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    dir,
    "--protected-mode",
    "no",
    "--loglevel",
    "warning",
  ]);
  const bare = spawnBounded("bare-grpc", process.execPath, [
    "--import",
    "tsx",
    BARE_GRPC_MAIN,
    "--listen",
    "127.0.0.1:0",
  ]);
  const s: Servers = { plane, ledger, edge, redis, bare, edgeResp, edgeGrpc, redisPort, bareGrpc: 0, dir };
  const mustLive = (): void => {
    for (const c of [ledger, edge, redis, bare]) {
      if (c.proc.exitCode !== null || c.proc.signalCode !== null)
        throw new Error(`${c.tag} exited:\n${c.output.join("").trim().split("\n").slice(-15).join("\n")}`);
    }
  };
  s.bareGrpc = await until("the bare gRPC server", 30_000, () => {
    mustLive();
    return Promise.resolve(announcedPort(bare));
  });
  await until("redis-server", 10_000, () => {
    mustLive();
    return Promise.resolve(redisCli(redisPort, "PING") === "PONG" ? true : undefined);
  });
  await until("the edge's RESP port", 30_000, () => {
    mustLive();
    return Promise.resolve(redisCli(edgeResp, "PING") === "PONG" ? true : undefined);
  });
  // The ledger elects itself; until then HSET answers an error.
  const created = await until("the sequence to be created on the edge (ledger up)", 30_000, () => {
    mustLive();
    const r = redisCli(
      edgeResp,
      "HSET",
      SEQUENCE,
      "type",
      "3",
      "auto_disk",
      "elegant_close",
      ...SEGMENT_ARGS,
    );
    return Promise.resolve(/^\(integer\)|^\d+$/.test(r) ? r : undefined);
  });
  void created;
  return s;
}

export async function stopServers(s: Servers): Promise<void> {
  // The edge first, with SIGTERM: it hands its tails back to the ledger and writes its profile.
  await reaper.kill(s.edge, "SIGTERM", 20_000);
  for (const c of [s.bare, s.redis, s.ledger]) await reaper.kill(c, "SIGTERM", 5_000);
  await s.plane?.stop();
  reaper.removeDir(s.dir);
}
