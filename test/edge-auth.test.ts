import { execFile, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { Redis } from "ioredis";
import { createClient } from "redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EdgeProcess } from "./support/edge-process.js";
import { LedgerCluster } from "./support/ledger-cluster.js";
import { waitForLeader } from "./support/ledger-helpers.js";
import { LedgerClient } from "@dispenser/ledger";

// An edge with a users file, spoken to by clients no one here wrote: redis-cli, ioredis,
// node-redis, redis-py (Debian's python3-redis) and grpc-js with proto-loader on our protos. Each
// attack that passed before users existed is refused: an anonymous draw, a catalog change by an
// issuer, a Lease beyond a token's cap, guessing a password (each failure answers later).

const run = promisify(execFile);
const PROTOS = resolve(import.meta.dirname, "..", "packages", "proto", "proto");
const hasRedisCli = spawnSync("redis-cli", ["--version"]).status === 0;
/** Debian's python3 with python3-redis (a pyenv python3 on PATH may lack it). */
const PY = ["/usr/bin/python3", "python3"].find(
  (p) => spawnSync(p, ["-c", "import redis"], { stdio: "ignore" }).status === 0,
);

const SECRETS = { orders: "orders-token-7f3a9c", ops: "ops-token-51d2e8", capped: "capped-token-0b4e77" };
const sha = (s: string): string => `sha256:${createHash("sha256").update(s).digest("hex")}`;

type Call = (
  req: object,
  md: grpc.Metadata,
  cb: (e: grpc.ServiceError | null, r: Record<string, unknown>) => void,
) => void;

describe("an edge with users (real processes, outside clients)", () => {
  const ledger = new LedgerCluster([1, 2, 3]);
  let edge: EdgeProcess;
  let lc: LedgerClient;
  let stub: grpc.Client & Record<string, Call>;

  const grpcCall = (method: string, req: object, token?: string): Promise<Record<string, unknown>> => {
    const md = new grpc.Metadata();
    if (token) md.set("authorization", `Bearer ${token}`);
    return new Promise((ok, fail) => stub[method]!.call(stub, req, md, (e, r) => (e ? fail(e) : ok(r))));
  };

  /** An ioredis connection logged in as `user` (the secret is the user's own). */
  const redisAs = async (user: keyof typeof SECRETS): Promise<Redis> => {
    const r = new Redis({ port: edge.respPort, username: user, password: SECRETS[user], lazyConnect: true });
    await r.connect();
    return r;
  };

  beforeAll(async () => {
    await ledger.init();
    ledger.startAll();
    lc = new LedgerClient({ endpoints: ledger.addresses(), totalTimeoutMs: 20_000 });
    await waitForLeader(lc);
    const users = join(ledger.dir, "users");
    writeFileSync(
      users,
      [
        `orders issue ${sha(SECRETS.orders)}`,
        `ops    admin ${sha(SECRETS.ops)}`,
        `capped issue ${sha(SECRETS.capped)} ids-per-call=100 ids-per-second=1000`,
      ].join("\n"),
    );
    edge = new EdgeProcess(ledger.addresses(), ["--users", users]);
    await edge.init();
    await edge.start();
    const def = protoLoader.loadSync(join(PROTOS, "dispenser/edge/v1/edge.proto"), {
      includeDirs: [PROTOS],
      longs: String,
      enums: String,
      defaults: true,
    });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      dispenser: { edge: { v1: { Dispenser: grpc.ServiceClientConstructor } } };
    };
    stub = new pkg.dispenser.edge.v1.Dispenser(
      edge.grpcAddress,
      grpc.credentials.createInsecure(),
    ) as typeof stub;
    const admin = await redisAs("ops");
    for (;;) {
      const r = await admin.call("HSET", "orders", "type", "3").catch((e: Error) => e);
      if (!(r instanceof Error) || /exists/.test(r.message)) break;
      await new Promise((res) => setTimeout(res, 200)); // the ledger may still be electing
    }
    admin.disconnect();
  }, 90_000);

  afterAll(async () => {
    stub?.close();
    await edge?.stop();
    lc?.close();
    await ledger.stop();
  });

  it("refuses anonymous commands and lets each client log in with its user", async () => {
    // A raw socket: an anonymous ioredis gives up at its HELLO, as it does against Redis.
    const anon = await rawClient(edge.respPort);
    expect(await anon.send("GET orders")).toBe("-NOAUTH Authentication required.");
    anon.close();

    const io = await redisAs("orders");
    const a = BigInt(String(await io.call("GET", "orders")));
    io.disconnect();

    const nr = createClient({
      socket: { port: edge.respPort },
      username: "orders",
      password: SECRETS.orders,
    });
    await nr.connect();
    const b = BigInt(await nr.sendCommand<string>(["GET", "orders"]));
    await nr.quit();
    expect(b).toBeGreaterThan(a);

    if (hasRedisCli) {
      const { stdout } = await run("redis-cli", [
        "-p",
        String(edge.respPort),
        "--user",
        "orders",
        "--pass",
        SECRETS.orders,
        "--no-auth-warning",
        "GET",
        "orders",
      ]);
      expect(BigInt(stdout.trim())).toBeGreaterThan(b);
    }
    if (PY) {
      const py = `import redis\nr = redis.Redis(port=${edge.respPort}, username="orders", password="${SECRETS.orders}")\nprint(int(r.execute_command("GET", "orders")))\ntry:\n    r.execute_command("DEL", "orders")\nexcept redis.exceptions.ResponseError as e:\n    print(str(e))\n`;
      const { stdout } = await run(PY, ["-c", py]);
      const [id, err] = stdout.trim().split("\n");
      expect(BigInt(id!)).toBeGreaterThan(b);
      expect(err).toMatch(/has no permissions to run the 'del' command/);
    }
  });

  it("lets only an admin change the catalog, over RESP and gRPC", async () => {
    const io = await redisAs("orders");
    await expect(io.call("DEL", "orders")).rejects.toThrow(
      /NOPERM User orders has no permissions to run the 'del' command/,
    );
    await expect(io.call("HSET", "mine", "type", "3")).rejects.toThrow(/NOPERM/);
    io.disconnect();

    const del = { name: "orders", expectedRevision: "0" };
    await expect(grpcCall("DeleteSequence", del)).rejects.toMatchObject({
      code: grpc.status.UNAUTHENTICATED,
    });
    await expect(grpcCall("DeleteSequence", del, `orders:${SECRETS.orders}`)).rejects.toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
    });
    await expect(grpcCall("DeleteSequence", del, `ops:wrong`)).rejects.toMatchObject({
      code: grpc.status.UNAUTHENTICATED,
    });
    // Still there: an issuer draws from it.
    const one = await grpcCall("Issue", { sequence: "orders" }, `orders:${SECRETS.orders}`);
    expect(BigInt(String(one["value"]))).toBeGreaterThan(0n);
  });

  it("holds a token to its caps: a Lease or batch beyond its per-call cap is refused, then its rate", async () => {
    const token = `capped:${SECRETS.capped}`;
    await expect(grpcCall("Lease", { sequence: "orders", count: "1000000" }, token)).rejects.toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
      details: "user capped may ask for at most 100 ids per call",
    });
    await expect(grpcCall("IssueBatch", { sequence: "orders", count: 101 }, token)).rejects.toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
    });
    const lease = await grpcCall("Lease", { sequence: "orders", count: "100" }, token);
    expect((lease["range"] as { count: string }).count).toBe("100");
    // 1,000 ids per second: a burst of eleven 100-id batches runs past it.
    let refused: grpc.ServiceError | undefined;
    for (let i = 0; i < 11 && !refused; i++) {
      refused = await grpcCall("IssueBatch", { sequence: "orders", count: 100 }, token).then(
        () => undefined,
        (e: grpc.ServiceError) => e,
      );
    }
    expect(refused?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(refused?.details).toBe("user capped may draw at most 1000 ids per second");
  });

  it("answers each failed AUTH later than the one before", async () => {
    const c = await rawClient(edge.respPort);
    const times: number[] = [];
    for (let i = 0; i < 4; i++) {
      const t = performance.now();
      expect(await c.send(`AUTH ops guess-${i}`)).toMatch(/^-WRONGPASS/);
      times.push(performance.now() - t);
    }
    c.close();
    // 50, 100, 200, 400 ms at least: a guesser gets a handful of tries per second per connection.
    expect(times[0]).toBeGreaterThanOrEqual(45);
    expect(times[3]).toBeGreaterThanOrEqual(395);
    expect(times.reduce((a, b) => a + b)).toBeGreaterThanOrEqual(740);
  });
});

/** A connection that sends inline commands and reads one reply line each. */
async function rawClient(port: number): Promise<{ send(line: string): Promise<string>; close(): void }> {
  const sock = connect(port, "127.0.0.1");
  await new Promise<void>((ok, fail) => sock.once("connect", ok).once("error", fail));
  let buf = "";
  const waiting: ((line: string) => void)[] = [];
  sock.on("data", (d: Buffer) => {
    buf += d.toString("latin1");
    for (let i = buf.indexOf("\r\n"); i >= 0 && waiting.length > 0; i = buf.indexOf("\r\n")) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 2);
      waiting.shift()!(line);
    }
  });
  return {
    send: (line) =>
      new Promise((ok) => {
        waiting.push(ok);
        sock.write(`${line}\r\n`);
      }),
    close: () => sock.destroy(),
  };
}
