import { Users } from "../../src/auth/users.js";
import type { Socket } from "node:net";
import { connect } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { Dispenser } from "../../src/issuing/dispenser.js";
import type { RespServerOptions } from "../../src/server/resp-server.js";
import { RespServer } from "../../src/server/resp-server.js";
import { StateLedgerPort } from "../support/state-ledger-port.js";

// The RESP server over a real socket, in front of the ledger's own state machine: the handshake
// of real clients, AUTH, and bad input that must get an error and change nothing.

const servers: RespServer[] = [];

async function start(
  password?: string,
  more: Partial<RespServerOptions> = {},
): Promise<{ port: number; ledger: StateLedgerPort }> {
  const ledger = new StateLedgerPort();
  ledger.create({ name: "s", type: 3 });
  const s = new RespServer(new Dispenser({ ledger, dc: 0 }), {
    host: "127.0.0.1",
    port: 0,
    users: password === undefined ? undefined : Users.withPassword(password),
    ...more,
  });
  servers.push(s);
  return { port: await s.listen(), ledger };
}

/** Sends raw bytes, collects what comes back until `expectBytes` arrived or the socket closed. */
function exchange(
  port: number,
  input: string | Buffer,
  settleMs = 150,
): Promise<{ out: string; closed: boolean }> {
  return new Promise((resolve) => {
    const sock = connect(port, "127.0.0.1");
    let out = "";
    let closed = false;
    sock.on("data", (d: Buffer) => (out += d.toString("latin1")));
    sock.on("close", () => (closed = true));
    sock.on("error", () => (closed = true));
    sock.write(input);
    setTimeout(() => {
      sock.destroy();
      resolve({ out, closed });
    }, settleMs);
  });
}

afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

describe("RespServer", () => {
  it("answers PING, ECHO (binary-safe), SELECT 0, CLIENT SETNAME and bare INFO", async () => {
    const { port } = await start();
    const echo = Buffer.concat([
      Buffer.from("*2\r\n$4\r\nECHO\r\n$3\r\n"),
      Buffer.from([0, 255, 13]),
      Buffer.from("\r\n"),
    ]);
    const r = await exchange(
      port,
      Buffer.concat([
        Buffer.from("PING\r\n*1\r\n$4\r\nPING\r\n"),
        echo,
        Buffer.from("SELECT 0\r\nSELECT 1\r\nCLIENT SETNAME app\r\nINFO\r\n"),
      ]),
    );
    expect(
      r.out.startsWith(
        "+PONG\r\n+PONG\r\n$3\r\n\u0000\u00ff\r\r\n+OK\r\n-ERR DB index is out of range\r\n+OK\r\n$",
      ),
    ).toBe(true);
    expect(r.out).toContain("redis_version:");
    expect(r.out).toContain("loading:0");
  });

  it("HELLO 3 switches to RESP3 (a map, nil as _), other versions get NOPROTO", async () => {
    const { port } = await start();
    const r = await exchange(port, "HELLO 4\r\nHELLO 3\r\nCLIENT GETNAME\r\n");
    expect(r.out.startsWith("-NOPROTO unsupported protocol version\r\n%7\r\n$6\r\nserver\r\n")).toBe(true);
    expect(r.out).toContain("$5\r\nproto\r\n:3\r\n");
    expect(r.out.endsWith("_\r\n")).toBe(true);
  });

  it("with a password, refuses everything but AUTH/HELLO before AUTH, and draws nothing", async () => {
    const { port, ledger } = await start("s3cret");
    const r = await exchange(port, "GET s\r\nAUTH wrong\r\nGET s\r\nAUTH s3cret\r\nGET s\r\n");
    expect(r.out).toBe(
      "-NOAUTH Authentication required.\r\n" +
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n" +
        "-NOAUTH Authentication required.\r\n" +
        "+OK\r\n" +
        "$1\r\n1\r\n",
    );
    expect(ledger.leases).toHaveLength(1);
    const h = await exchange(port, "HELLO 3 AUTH default s3cret\r\nGET s\r\n");
    expect(h.out.startsWith("%7\r\n")).toBe(true);
  });

  it("answers bad input with an error, keeps the connection when it can, and issues nothing", async () => {
    const { port, ledger } = await start();
    const r = await exchange(
      port,
      'FLUSHALL\r\nGET\r\nGET s t\r\nGETN s 0\r\nGETN s x\r\nGET "unbalanced\r\nGET bad!name\r\nHSET x type 9\r\nPING\r\n',
    );
    const lines = r.out.split("\r\n").filter((l) => l.length > 0);
    expect(lines).toEqual([
      "-ERR unknown command 'FLUSHALL', with args beginning with: ",
      "-ERR wrong number of arguments for 'get' command",
      "-ERR wrong number of arguments for 'get' command",
      expect.stringMatching(/^-ERR count must be/),
      expect.stringMatching(/^-ERR count must be/),
      "-ERR Protocol error: unbalanced quotes in request",
      expect.stringMatching(/^-ERR sequence name must be/),
      "-ERR type must be 1, 2 or 3",
      "+PONG",
    ]);
    expect(r.closed).toBe(false);
    expect(ledger.leases).toHaveLength(0);
  });

  it("closes a connection that trickles a command, keeps one that pipelines, and one not logged in in time", async () => {
    const { port } = await start(undefined, { partialCommandTimeoutMs: 300 });
    const closedAfter = (sock: Socket): Promise<number> => {
      const t = performance.now();
      return new Promise((resolve) => sock.once("close", () => resolve(performance.now() - t)));
    };
    // A byte every 50 ms, never a whole command: closed at 300 ms.
    const slow = connect(port, "127.0.0.1");
    slow.on("error", () => undefined);
    const closing = closedAfter(slow);
    const bytes = "*2\r\n$3\r\nGET\r\n$1\r\n";
    let i = 0;
    const trickle = setInterval(() => slow.write(bytes[i++ % bytes.length]!), 50);
    expect(await closing).toBeGreaterThanOrEqual(250);
    clearInterval(trickle);

    // Commands that keep completing, each chunk ending inside the next one: served throughout.
    const busy = connect(port, "127.0.0.1");
    let replies = 0;
    busy.on("data", (d: Buffer) => (replies += d.toString("latin1").split("\r\n").length - 1));
    const cmd = "*2\r\n$3\r\nGET\r\n$1\r\ns\r\n";
    const stream = cmd.repeat(40);
    for (let off = 0; off < stream.length; off += 7) {
      busy.write(stream.slice(off, off + 7));
      await new Promise((r) => setTimeout(r, 15));
    }
    while (replies < 80) await new Promise((r) => setTimeout(r, 10)); // 40 bulk replies, 2 lines each
    expect(busy.destroyed).toBe(false);
    busy.destroy();

    // With users: a connection that does not log in within the deadline is closed.
    const locked = await start("pw", { authTimeoutMs: 200 });
    const idle = connect(locked.port, "127.0.0.1");
    idle.on("error", () => undefined);
    expect(await closedAfter(idle)).toBeGreaterThanOrEqual(150);
  });

  it("closes a connection idle past its timeout, and keeps one that keeps talking", async () => {
    const { port } = await start(undefined, { idleTimeoutMs: 300 });
    const idle = connect(port, "127.0.0.1");
    idle.on("error", () => undefined);
    const t = performance.now();
    await new Promise((r) => idle.once("close", r));
    expect(performance.now() - t).toBeGreaterThanOrEqual(250);
    const talking = connect(port, "127.0.0.1");
    let pongs = 0;
    talking.on("data", (d: Buffer) => (pongs += d.toString("latin1").split("+PONG").length - 1));
    for (let i = 0; i < 10; i++) {
      talking.write("PING\r\n");
      await new Promise((r) => setTimeout(r, 100)); // 1 s in all, more than 3 timeouts
    }
    while (pongs < 10) await new Promise((r) => setTimeout(r, 10));
    expect(talking.destroyed).toBe(false);
    talking.destroy();
  });

  it("closes the connection on framing it cannot resynchronise, after saying why", async () => {
    const { port, ledger } = await start();
    const r = await exchange(port, "*2\r\n$3\r\nGET\r\n$x\r\nPING\r\n");
    expect(r.out).toBe("-ERR Protocol error: invalid bulk length\r\n");
    expect(r.closed).toBe(true);
    const big = await exchange(port, `*2\r\n$3\r\nGET\r\n$${10 * 1024 * 1024}\r\n`);
    expect(big.out).toMatch(/^-ERR Protocol error: invalid bulk length|^-ERR Protocol error: too big/);
    expect(big.closed).toBe(true);
    expect(ledger.leases).toHaveLength(0);
  });
});

describe("a client that does not read its replies", () => {
  it("stops being served at the output bound and is closed after the timeout: few ids are drawn", async () => {
    const ledger = new StateLedgerPort();
    ledger.create({ name: "s", type: 3 });
    const d = new Dispenser({ ledger, dc: 0 });
    const maxPendingOutputBytes = 1024 * 1024;
    const s = new RespServer(d, {
      host: "127.0.0.1",
      port: 0,
      users: undefined,
      maxPendingOutputBytes,
      slowClientTimeoutMs: 300,
    });
    servers.push(s);
    const port = await s.listen();
    // 64.8 KB of pipelined GETN of 10,000 ids each: 3,600 commands, 36 M ids if all were run.
    const cmd = "GETN s 10000\r\n";
    const pipeline = cmd.repeat(Math.floor(64_800 / cmd.length));
    const sock = connect(port, "127.0.0.1");
    sock.pause(); // never reads (so it would not notice the close either)
    sock.on("error", () => undefined);
    await new Promise<void>((r) => sock.write(pipeline, () => r()));
    while (s.connections > 0) await new Promise((r) => setTimeout(r, 20));
    sock.destroy();
    const generated = [...d.samples()].reduce((n, x) => n + x.generated, 0n);
    // What ran is what the socket buffers and the bound hold: each GETN reply is about 110 KB
    // (10,000 ids of 1..7 digits), so a few megabytes of kernel buffers plus 1 MiB, not 36 M ids.
    expect(generated).toBeGreaterThan(0n);
    expect(generated).toBeLessThan(2_000_000n);
  });
});
