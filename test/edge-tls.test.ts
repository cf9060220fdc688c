import { execFile, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { BufferIo, runCli } from "@dispenser/cli";
import { createDispenser, credentialsFromEnv } from "@dispenser/client";
import { LedgerClient } from "@dispenser/ledger";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { Redis } from "ioredis";
import { createClient } from "redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EdgeProcess } from "./support/edge-process.js";
import { freePort, LedgerCluster } from "./support/ledger-cluster.js";
import { until as untilTrue, waitForLeader } from "./support/ledger-helpers.js";

// An edge's own ports over TLS, with certificates made by the documented recipe: gRPC with
// channel credentials, RESP on its TLS port (Redis's tls-port) for redis-cli --tls, ioredis,
// node-redis and redis-py, and the SDK and the CLI with credentials from files and the
// environment. A second edge asks for client certificates (mutual TLS). Plaintext on a TLS port,
// a stranger's certificate, a handshake that never comes and guessed tokens are each refused.

const REPO = resolve(import.meta.dirname, "..");
const RECIPE = join(REPO, "deploy", "certs", "make-dev-certs.sh");
const PROTOS = join(REPO, "packages", "proto", "proto");
const run = promisify(execFile);
const hasRedisCli = spawnSync("redis-cli", ["--version"]).status === 0;
const PY = ["/usr/bin/python3", "python3"].find(
  (p) => spawnSync(p, ["-c", "import redis"], { stdio: "ignore" }).status === 0,
);
const SECRET = "orders-token-3c9e1f";
const TOKEN = `orders:${SECRET}`;

type Call = (
  req: object,
  md: grpc.Metadata,
  cb: (e: grpc.ServiceError | null, r: Record<string, unknown>) => void,
) => void;
type Stub = grpc.Client & Record<string, Call>;

describe("an edge's ports over TLS (real processes, outside clients)", () => {
  const ledger = new LedgerCluster([1, 2, 3]);
  const certs = join(ledger.dir, "certs");
  const strangers = join(ledger.dir, "strangers");
  const pem = (dir: string, name: string): Buffer => readFileSync(join(dir, `${name}.pem`));
  const file = (name: string): string => join(certs, `${name}.pem`);
  let lc: LedgerClient;
  let edge: EdgeProcess; // TLS for gRPC, RESP on a TLS port too, users
  let mutual: EdgeProcess; // clients must show a certificate of the CA
  let tlsPort = 0;
  let mutualTlsPort = 0;
  let Dispenser: grpc.ServiceClientConstructor;

  const call = (
    stub: Stub,
    method: string,
    req: object,
    token?: string,
  ): Promise<Record<string, unknown>> => {
    const md = new grpc.Metadata();
    if (token) md.set("authorization", `Bearer ${token}`);
    return new Promise((ok, fail) => stub[method]!.call(stub, req, md, (e, r) => (e ? fail(e) : ok(r))));
  };
  const stubOf = (address: string, creds: grpc.ChannelCredentials): Stub =>
    new Dispenser(address, creds) as Stub;

  beforeAll(async () => {
    await run("bash", [RECIPE, certs, "tls-test", "edge-e1", "admin-app"]);
    await run("bash", [RECIPE, strangers, "tls-test", "admin-app"]);
    await ledger.init();
    ledger.startAll();
    lc = new LedgerClient({ endpoints: ledger.addresses(), totalTimeoutMs: 20_000 });
    await waitForLeader(lc);
    const users = join(ledger.dir, "users");
    const sha = createHash("sha256").update(SECRET).digest("hex");
    writeFileSync(users, `orders admin sha256:${sha}\n`);
    const serverTls = ["--tls-cert", file("edge-e1"), "--tls-key", file("edge-e1-key"), "--users", users];
    tlsPort = await freePort();
    edge = new EdgeProcess(ledger.addresses(), [...serverTls, "--resp-tls-listen", `127.0.0.1:${tlsPort}`]);
    await edge.init();
    mutualTlsPort = await freePort();
    mutual = new EdgeProcess(ledger.addresses(), [
      ...serverTls,
      "--tls-client-ca",
      file("ca"),
      "--resp-tls-listen",
      `127.0.0.1:${mutualTlsPort}`,
    ]);
    await mutual.init();
    try {
      await edge.start();
      await mutual.start();
    } catch (e) {
      await edge.stop();
      await mutual.stop();
      throw e;
    }
    const def = protoLoader.loadSync(join(PROTOS, "dispenser/edge/v1/edge.proto"), {
      includeDirs: [PROTOS],
      longs: String,
      enums: String,
      defaults: true,
    });
    Dispenser = (
      grpc.loadPackageDefinition(def) as unknown as {
        dispenser: { edge: { v1: { Dispenser: grpc.ServiceClientConstructor } } };
      }
    ).dispenser.edge.v1.Dispenser;
    // Create the sequence over TLS (the ledger may still be electing).
    const admin = stubOf(edge.grpcAddress, grpc.credentials.createSsl(pem(certs, "ca")));
    try {
      for (;;) {
        const r = await call(
          admin,
          "CreateSequence",
          { sequence: { name: "orders", type: "SEQUENCE_TYPE_INCREASING" } },
          TOKEN,
        ).catch((e: grpc.ServiceError) => e);
        if (!(r instanceof Error) || r.code === grpc.status.ALREADY_EXISTS) break;
        await new Promise((res) => setTimeout(res, 200));
      }
    } finally {
      admin.close();
    }
  }, 120_000);

  afterAll(async () => {
    await edge?.stop();
    await mutual?.stop();
    lc?.close();
    await ledger.stop();
  }, 60_000);

  it("serves gRPC over TLS to grpc-js with channel credentials, and nothing to plaintext", async () => {
    const tls = stubOf(edge.grpcAddress, grpc.credentials.createSsl(pem(certs, "ca")));
    const a = BigInt(String((await call(tls, "Issue", { sequence: "orders" }, TOKEN))["value"]));
    expect(a).toBeGreaterThan(0n);
    // TLS does not replace the token.
    await expect(call(tls, "Issue", { sequence: "orders" })).rejects.toMatchObject({
      code: grpc.status.UNAUTHENTICATED,
    });
    tls.close();
    const plain = stubOf(edge.grpcAddress, grpc.credentials.createInsecure());
    await expect(call(plain, "Issue", { sequence: "orders" }, TOKEN)).rejects.toMatchObject({
      code: grpc.status.UNAVAILABLE,
    });
    plain.close();
    // A client that trusts another CA does not accept the edge's certificate.
    const wrongCa = stubOf(edge.grpcAddress, grpc.credentials.createSsl(pem(strangers, "ca")));
    await expect(call(wrongCa, "Issue", { sequence: "orders" }, TOKEN)).rejects.toMatchObject({
      code: grpc.status.UNAVAILABLE,
    });
    wrongCa.close();
  });

  it("serves RESP on its TLS port to redis-cli --tls, ioredis, node-redis and redis-py", async () => {
    const ca = pem(certs, "ca");
    const io = new Redis({
      port: tlsPort,
      tls: { ca },
      username: "orders",
      password: SECRET,
      lazyConnect: true,
    });
    await io.connect();
    const a = BigInt(String(await io.call("GET", "orders")));
    io.disconnect();

    const nr = createClient({
      socket: { port: tlsPort, tls: true, ca },
      username: "orders",
      password: SECRET,
    });
    await nr.connect();
    const b = BigInt(await nr.sendCommand<string>(["GET", "orders"]));
    await nr.quit();
    expect(b).toBeGreaterThan(a);

    let last = b;
    if (hasRedisCli) {
      const { stdout } = await run("redis-cli", [
        "--tls",
        "--cacert",
        file("ca"),
        "-p",
        String(tlsPort),
        "--user",
        "orders",
        "--pass",
        SECRET,
        "--no-auth-warning",
        "GET",
        "orders",
      ]);
      expect(BigInt(stdout.trim())).toBeGreaterThan(last);
      last = BigInt(stdout.trim());
    }
    if (PY) {
      const py = `import redis\nr = redis.Redis(port=${tlsPort}, ssl=True, ssl_ca_certs="${file("ca")}", username="orders", password="${SECRET}")\nprint(int(r.execute_command("GET", "orders")))\n`;
      const { stdout } = await run(PY, ["-c", py]);
      expect(BigInt(stdout.trim())).toBeGreaterThan(last);
    }
  });

  it("says nothing in RESP to a plaintext client on the TLS port, and cuts a handshake that never comes", async () => {
    // A plaintext command is not a TLS hello: the server closes without a RESP reply.
    const sock = connect(tlsPort, "127.0.0.1");
    await new Promise<void>((ok, fail) => sock.once("connect", ok).once("error", fail));
    let got = "";
    sock.on("data", (d: Buffer) => (got += d.toString("latin1")));
    sock.write("PING\r\n");
    await new Promise((r) => sock.once("close", r));
    expect(got).not.toMatch(/PONG/);

    // A client that connects and sends nothing is cut once the handshake deadline (10 s) passes.
    const idle = connect(tlsPort, "127.0.0.1");
    await new Promise<void>((ok, fail) => idle.once("connect", ok).once("error", fail));
    const t = performance.now();
    await new Promise((r) => idle.once("close", r));
    expect(performance.now() - t).toBeGreaterThanOrEqual(9_000);
  }, 30_000);

  it("gives the SDK and the CLI their credentials from files and the environment", async () => {
    const tokenFile = join(ledger.dir, "token");
    writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    const env = { DISPENSER_TLS_CA: file("ca"), DISPENSER_TOKEN_FILE: tokenFile };
    const d = createDispenser({
      endpoints: [edge.grpcAddress],
      sequence: "orders",
      mode: "direct",
      ...credentialsFromEnv(env),
    });
    try {
      expect(await d.next()).toBeGreaterThan(0n);
    } finally {
      await d.close();
    }
    // Without the token the SDK hears why, in a code it can branch on.
    const anon = createDispenser({
      endpoints: [edge.grpcAddress],
      sequence: "orders",
      mode: "direct",
      ...credentialsFromEnv({ DISPENSER_TLS_CA: file("ca") }),
    });
    try {
      await expect(anon.next()).rejects.toMatchObject({ code: "unauthenticated" });
    } finally {
      await anon.close();
    }

    const cli = async (
      env: Record<string, string>,
      ...args: string[]
    ): Promise<{ code: number | "running"; out: string; err: string }> => {
      const io = new BufferIo({ DISPENSER_EDGE: edge.grpcAddress, ...env });
      const code = await runCli(args, io);
      return { code, out: io.stdout, err: io.stderr };
    };
    const ok = await cli(env, "next", "orders", "-n", "3");
    expect(ok.err).toBe("");
    expect(ok.code).toBe(0);
    expect(ok.out.trim().split("\n")).toHaveLength(3);
    // The same from flags (the token still from a file) and from DISPENSER_TOKEN.
    const flags = await cli({}, "next", "orders", "--tls-ca", file("ca"), "--token-file", tokenFile);
    expect(flags.code).toBe(0);
    const inline = await cli({ DISPENSER_TLS_CA: file("ca"), DISPENSER_TOKEN: TOKEN }, "next", "orders");
    expect(inline.code).toBe(0);
    const noToken = await cli({ DISPENSER_TLS_CA: file("ca") }, "next", "orders");
    expect(noToken.code).toBe(1);
    expect(noToken.err).toMatch(/needs a token.*UNAUTHENTICATED/);
    const missing = await cli(
      { DISPENSER_TLS_CA: join(certs, "absent.pem"), DISPENSER_TOKEN: TOKEN },
      "next",
      "orders",
    );
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/DISPENSER_TLS_CA: cannot read .*absent\.pem/);
  });

  it("answers guessed tokens later and later, from any number of connections", async () => {
    const times: number[] = [];
    for (let i = 0; i < 4; i++) {
      // A fresh connection per guess: the delay follows the address, not the connection.
      const s = stubOf(edge.grpcAddress, grpc.credentials.createSsl(pem(certs, "ca")));
      const t = performance.now();
      await expect(call(s, "Issue", { sequence: "orders" }, `orders:guess-${i}`)).rejects.toMatchObject({
        code: grpc.status.UNAUTHENTICATED,
      });
      times.push(performance.now() - t);
      s.close();
    }
    // At least 50, 100, 200, 400 ms (more if earlier failures from this address are remembered).
    for (let i = 0; i < 4; i++) expect(times[i]).toBeGreaterThanOrEqual(45 * 2 ** i);
    // Each answer came as its window closed: the right token, sent now, is checked and let in.
    const s = stubOf(edge.grpcAddress, grpc.credentials.createSsl(pem(certs, "ca")));
    await call(s, "Issue", { sequence: "orders" }, TOKEN);

    // Twenty guesses at once: one is checked and opens a window; the others are not checked.
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        call(s, "Issue", { sequence: "orders" }, `orders:burst-${i}`).then(
          () => "let in",
          (e: grpc.ServiceError) => e.code,
        ),
      ),
    );
    expect(outcomes.filter((o) => o === grpc.status.UNAUTHENTICATED)).toHaveLength(1);
    expect(outcomes.filter((o) => o === grpc.status.RESOURCE_EXHAUSTED)).toHaveLength(19);
    // Once the window has closed, the right token is let in again.
    await untilTrue("the window to close", async () =>
      call(s, "Issue", { sequence: "orders" }, TOKEN).then(
        () => true,
        () => undefined,
      ),
    );
    s.close();
  });

  it("with --tls-client-ca, lets in only clients that show a certificate of the CA", async () => {
    const ca = pem(certs, "ca");
    const mine = { cert: pem(certs, "admin-app"), key: pem(certs, "admin-app-key") };
    const theirs = { cert: pem(strangers, "admin-app"), key: pem(strangers, "admin-app-key") };

    // gRPC: with our certificate (and a token) yes; without one, or with a stranger's, no.
    const withCert = stubOf(mutual.grpcAddress, grpc.credentials.createSsl(ca, mine.key, mine.cert));
    expect(
      BigInt(String((await call(withCert, "Issue", { sequence: "orders" }, TOKEN))["value"])),
    ).toBeGreaterThan(0n);
    withCert.close();
    for (const creds of [
      grpc.credentials.createSsl(ca),
      grpc.credentials.createSsl(ca, theirs.key, theirs.cert),
    ]) {
      const s = stubOf(mutual.grpcAddress, creds);
      await expect(call(s, "Issue", { sequence: "orders" }, TOKEN)).rejects.toMatchObject({
        code: grpc.status.UNAVAILABLE,
      });
      s.close();
    }

    // RESP: the same, through ioredis and a bare TLS socket.
    const io = new Redis({
      port: mutualTlsPort,
      tls: { ca, ...mine },
      username: "orders",
      password: SECRET,
      lazyConnect: true,
    });
    await io.connect();
    expect(BigInt(String(await io.call("GET", "orders")))).toBeGreaterThan(0n);
    io.disconnect();
    for (const cert of [undefined, theirs]) {
      const s = tlsConnect({ port: mutualTlsPort, host: "127.0.0.1", ca, ...(cert ?? {}) });
      let got = "";
      s.on("data", (d: Buffer) => (got += d.toString("latin1")));
      s.on("error", () => undefined);
      s.on("secureConnect", () => s.write("PING\r\n"));
      await new Promise((r) => s.once("close", r));
      expect(got).toBe("");
    }
  });
});
