import { connect, constants } from "node:http2";
import { GrpcServer } from "@dispenser/plumbing";
import { DispenserService, IssueBatchRequest } from "@dispenser/proto";
import { afterEach, describe, expect, it } from "vitest";
import { createDispenserService } from "../../src/grpc/dispenser-service.js";
import { Dispenser } from "../../src/issuing/dispenser.js";
import { StateLedgerPort } from "../support/state-ledger-port.js";

// A gRPC client that asks and never reads its answers must not make the edge draw ids into memory
// for it without bound: past the bound its calls are refused before they run, and after the timeout
// its connection is closed.

const servers: GrpcServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.shutdown(100);
});

function frame(count: number): Buffer {
  const body = IssueBatchRequest.encode({ sequence: "s", count }).finish();
  const f = Buffer.alloc(5 + body.byteLength);
  f.writeUInt32BE(body.byteLength, 1);
  Buffer.from(body).copy(f, 5);
  return f;
}

describe("gRPC answers a client does not read", () => {
  it("are bounded: later calls get RESOURCE_EXHAUSTED and run nothing; the connection is closed", async () => {
    const ledger = new StateLedgerPort();
    // Type 1: a batch is a list of 10,000 ids (about 80 KB), not a compact range.
    ledger.create({ name: "s", type: 1, length: 12 });
    const d = new Dispenser({ ledger, dc: 0 });
    const server = new GrpcServer({
      maxReceiveBytes: 1 << 20,
      maxSendBytes: 4 << 20,
      maxUnsentAnswerBytes: 1 << 20,
      slowClientTimeoutMs: 3_000,
    });
    server.addService(DispenserService, createDispenserService(d));
    servers.push(server);
    const port = await server.listen("127.0.0.1", 0);

    // A window of 0: the server may send this client headers but no answer bytes at all, as if it
    // never read (node's client otherwise takes what arrives into its own buffers).
    const session = connect(`http://127.0.0.1:${port}`, { settings: { initialWindowSize: 0 } });
    session.on("error", () => undefined);
    const closed = new Promise<void>((r) => session.once("close", () => r()));
    const statuses: string[] = [];
    const calls = 400; // 400 x 10,000 ids if all ran
    const wave = 20;
    for (let i = 0; i < calls; i += wave) {
      // A wave of calls, then wait for their response headers (which need no window): the server
      // has run or refused each by then, so what runs does not depend on the machine's speed.
      await Promise.all(
        Array.from(
          { length: wave },
          () =>
            new Promise<void>((resolve) => {
              const stream = session.request({
                [constants.HTTP2_HEADER_METHOD]: "POST",
                [constants.HTTP2_HEADER_PATH]: "/dispenser.edge.v1.Dispenser/IssueBatch",
                "content-type": "application/grpc",
                te: "trailers",
              });
              stream.on("error", () => resolve());
              stream.on("close", () => resolve());
              // A trailers-only answer (a refusal) carries its status in the response headers.
              stream.on("response", (h) => {
                const st = h["grpc-status"];
                if (st !== undefined) statuses.push(String(st));
                resolve();
              });
              stream.end(frame(10_000));
            }),
        ),
      );
    }
    await closed;
    const generated = [...d.samples()].reduce((n, x) => n + x.generated, 0n);
    // Each answer is about 80 KB; 1 MiB holds a dozen of them, plus what the loopback socket and
    // the client's flow-control window took.
    const ran = Number(generated / 10_000n);
    // 1 MiB holds 13 answers of 80 KB: the wave that crossed the bound ran, every later call was
    // refused (RESOURCE_EXHAUSTED, 8) before it drew anything.
    expect(ran).toBeGreaterThanOrEqual(13);
    expect(ran).toBeLessThanOrEqual(13 + wave);
    expect(statuses.filter((x) => x === "8")).toHaveLength(calls - ran);
  });
});
