import { createServer, type Server as NetServer } from "node:net";
import type { MessageBatch, SendAck } from "@dispenser/proto";
import { MessageBatch as MessageBatchCodec, PeerService } from "@dispenser/proto";
import type { sendUnaryData, ServerReadableStream } from "@grpc/grpc-js";
import { Server, ServerCredentials, status } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import type { StreamEnd } from "../src/transport/h2-stream.js";
import { H2Channel } from "../src/transport/h2-stream.js";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanups.splice(0)) f();
});

/** A grpc-js server with the Peer service whose Stream handler is `onStream`. */
async function peerServer(
  onStream: (call: ServerReadableStream<MessageBatch, SendAck>, cb: sendUnaryData<SendAck>) => void,
): Promise<string> {
  const server = new Server();
  server.addService(PeerService, { stream: onStream });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  cleanups.push(() => server.forceShutdown());
  return `127.0.0.1:${port}`;
}

function batch(): Uint8Array {
  return MessageBatchCodec.encode({ clusterId: "c", from: 1n, to: 2n, messages: [] }).finish();
}

const waitFor = async <T>(f: () => T | undefined, ms = 5_000): Promise<T> => {
  const until = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe("H2Channel (gRPC client stream on node:http2)", () => {
  it("delivers framed messages in order to a grpc-js server, with the call's metadata", async () => {
    const got: string[] = [];
    let seen: string | undefined;
    const addr = await peerServer((call, cb) => {
      seen = String(call.metadata.get("dispenser-incarnation")[0]);
      call.on("data", (b: MessageBatch) => got.push(`${b.clusterId}:${b.from}->${b.to}`));
      call.on("end", () => cb(null, {}));
    });
    const ch = new H2Channel(addr);
    cleanups.push(() => ch.close());
    let end: StreamEnd | undefined;
    const s = ch.open(PeerService.stream.path, { "dispenser-incarnation": "abc" }, (e) => (end = e));
    expect(s).toBeDefined();
    for (let i = 0; i < 3; i++) {
      s!.write(MessageBatchCodec.encode({ clusterId: `c${i}`, from: 1n, to: 2n, messages: [] }).finish());
    }
    await waitFor(() => (got.length === 3 ? true : undefined));
    expect(got).toEqual(["c0:1->2", "c1:1->2", "c2:1->2"]);
    expect(seen).toBe("abc");
    expect(end).toBeUndefined(); // still open
    s!.cancel();
    expect((await waitFor(() => end)).code).toBe(status.CANCELLED);
  });

  it("reports the status and message a server ends the call with", async () => {
    const addr = await peerServer((call, cb) => {
      call.on("data", () =>
        cb({ code: status.FAILED_PRECONDITION, details: "node 2 came back: 100% new" }, null),
      );
    });
    const ch = new H2Channel(addr);
    cleanups.push(() => ch.close());
    let end: StreamEnd | undefined;
    const s = ch.open(PeerService.stream.path, {}, (e) => (end = e));
    s!.write(batch());
    const e = await waitFor(() => end);
    expect(e.code).toBe(status.FAILED_PRECONDITION);
    expect(e.details).toBe("node 2 came back: 100% new");
  });

  it("a refused connection ends the stream as UNAVAILABLE, and reconnecting backs off", async () => {
    const closed = createServer();
    const port = await new Promise<number>((r) =>
      closed.listen(0, "127.0.0.1", () => r((closed.address() as { port: number }).port)),
    );
    await new Promise((r) => closed.close(r));
    const ch = new H2Channel(`127.0.0.1:${port}`);
    cleanups.push(() => ch.close());
    let end: StreamEnd | undefined;
    const s = ch.open(PeerService.stream.path, {}, (e) => (end = e));
    expect(s).toBeDefined();
    expect((await waitFor(() => end)).code).toBe(status.UNAVAILABLE);
    // Right after a failed connect, no new connection is tried.
    expect(ch.open(PeerService.stream.path, {}, () => {})).toBeUndefined();
    await new Promise((r) => setTimeout(r, 150));
    expect(ch.open(PeerService.stream.path, {}, () => {})).toBeDefined();
  });

  it("drops a connection whose peer never answers, and connects anew", async () => {
    // Accepts TCP and then says nothing, like a stopped process or a vanished machine.
    let connections = 0;
    const mute: NetServer = createServer(() => {
      connections++;
    });
    const port = await new Promise<number>((r) =>
      mute.listen(0, "127.0.0.1", () => r((mute.address() as { port: number }).port)),
    );
    cleanups.push(() => mute.close());
    const ch = new H2Channel(`127.0.0.1:${port}`, undefined, 100);
    cleanups.push(() => ch.close());
    let end: StreamEnd | undefined;
    const s = ch.open(PeerService.stream.path, {}, (e) => (end = e));
    s!.write(batch());
    expect((await waitFor(() => end, 3_000)).code).toBe(status.UNAVAILABLE);
    expect(connections).toBe(1);
    await new Promise((r) => setTimeout(r, 150));
    expect(ch.open(PeerService.stream.path, {}, () => {})).toBeDefined();
    await waitFor(() => (connections === 2 ? true : undefined));
  });
});
