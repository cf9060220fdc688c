import type { IncomingHttpHeaders } from "node:http2";
import { connect } from "node:http2";
import type { LeaseSegmentRequest, LeaseSegmentResponse, MessageBatch, SendAck } from "@dispenser/proto";
import {
  errorDetailOf,
  ErrorReason,
  LedgerClient,
  LedgerService,
  MessageBatch as MessageBatchCodec,
  PeerClient,
  PeerService,
  statusError,
} from "@dispenser/proto";
import type { sendUnaryData, ServerReadableStream, ServerUnaryCall, ServiceError } from "@grpc/grpc-js";
import { credentials, Metadata, status } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import type { GrpcServerOptions } from "../src/grpc-server.js";
import { GrpcServer } from "../src/grpc-server.js";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

type Lease = (
  call: ServerUnaryCall<LeaseSegmentRequest, LeaseSegmentResponse>,
  cb: sendUnaryData<LeaseSegmentResponse>,
) => void;
type Stream = (call: ServerReadableStream<MessageBatch, SendAck>, cb: sendUnaryData<SendAck>) => void;

const grant = (r: LeaseSegmentRequest): LeaseSegmentResponse => ({
  grant: {
    sequence: r.sequence,
    dc: r.dc,
    start: 0n,
    end: r.size,
    fence: { term: 1n, index: 2n },
    kind: 1,
    returnToken: "",
  },
  sequenceRevision: 7n,
  clusterIdentity: "",
});

/** A GrpcServer with the Ledger service (only LeaseSegment does anything) and the Peer service. */
async function serve(
  lease: Lease,
  stream: Stream = (_c, cb) => cb(null, {}),
  limits: GrpcServerOptions = { maxReceiveBytes: 1024, maxSendBytes: 1024 },
): Promise<string> {
  const server = new GrpcServer(limits);
  const unused = (_c: unknown, cb: sendUnaryData<unknown>): void =>
    cb({ code: status.UNIMPLEMENTED, details: "not in this test" }, null);
  server.addService(LedgerService, {
    createSequence: unused,
    updateSequence: unused,
    deleteSequence: unused,
    getSequence: unused,
    listSequences: unused,
    leaseSegment: lease,
    returnSegment: unused,
    raiseMark: unused,
    backup: unused,
    releaseRestore: unused,
    clusterStatus: unused,
    addMember: unused,
    removeMember: unused,
    promoteMember: unused,
    transferLeader: unused,
  });
  server.addService(PeerService, { send: unused, stream, installSnapshot: unused });
  const port = await server.listen("127.0.0.1", 0);
  cleanups.push(() => server.shutdown(100));
  return `127.0.0.1:${port}`;
}

function ledgerClient(addr: string): InstanceType<typeof LedgerClient> {
  const c = new LedgerClient(addr, credentials.createInsecure());
  cleanups.push(() => c.close());
  return c;
}

const req = (size = 10n): LeaseSegmentRequest => ({ sequence: "s", dc: 0, size, requestId: "r", kind: 0 });

function lease(
  c: InstanceType<typeof LedgerClient>,
  r: LeaseSegmentRequest,
  opts: { deadline?: number; metadata?: Metadata } = {},
): Promise<{ err: ServiceError | null; res: LeaseSegmentResponse | undefined }> {
  return new Promise((resolve) =>
    c.leaseSegment(r, opts.metadata ?? new Metadata(), { deadline: opts.deadline ?? Infinity }, (err, res) =>
      resolve({ err, res }),
    ),
  );
}

/** A raw HTTP/2 request: what a broken or foreign client might send. */
async function raw(
  addr: string,
  headers: Record<string, string>,
  body: Buffer,
): Promise<{
  status: number;
  grpcStatus: string | undefined;
  message: string | undefined;
  headers: string[];
}> {
  const session = connect(`http://${addr}`);
  cleanups.push(() => session.destroy());
  const all0 = { ":method": "POST", "content-type": "application/grpc", te: "trailers", ...headers };
  const bodyless = all0[":method"] === "GET";
  const req = session.request(all0, { endStream: bodyless });
  let head: IncomingHttpHeaders = {};
  let tail: IncomingHttpHeaders = {};
  req.on("response", (h) => (head = h));
  req.on("trailers", (t: IncomingHttpHeaders) => (tail = t));
  req.on("data", () => {});
  if (!bodyless) req.end(body);
  await new Promise<void>((r) => req.once("close", () => r()));
  const all = { ...head, ...tail };
  return {
    status: Number(head[":status"]),
    grpcStatus: all["grpc-status"] as string | undefined,
    message: typeof all["grpc-message"] === "string" ? decodeURI(all["grpc-message"]) : undefined,
    headers: Object.keys(head),
  };
}

const frame = (body: Uint8Array, flag = 0): Buffer => {
  const f = Buffer.alloc(5 + body.byteLength);
  f[0] = flag;
  f.writeUInt32BE(body.byteLength, 1);
  f.set(body, 5);
  return f;
};

describe("GrpcServer (gRPC on node:http2)", () => {
  it("answers a grpc-js client's unary call, with the caller's metadata", async () => {
    let seen: unknown;
    const addr = await serve((call, cb) => {
      seen = call.metadata.get("x-who")[0];
      cb(null, grant(call.request));
    });
    const md = new Metadata();
    md.set("x-who", "me");
    const { err, res } = await lease(ledgerClient(addr), req(25n), { metadata: md });
    expect(err).toBeNull();
    expect(res?.grant?.end).toBe(25n);
    expect(res?.sequenceRevision).toBe(7n);
    expect(seen).toBe("me");
  });

  it("carries an error's code, message (any characters) and binary trailers to the client", async () => {
    const message = "not leader, try 127.0.0.1:9 — 100% sure? #1";
    const addr = await serve((_call, cb) =>
      cb(
        statusError(status.FAILED_PRECONDITION, message, {
          reason: ErrorReason.ERROR_REASON_NOT_LEADER,
          leaderAddress: "127.0.0.1:9",
          leaderId: 3n,
        }),
        null,
      ),
    );
    const { err } = await lease(ledgerClient(addr), req());
    expect(err?.code).toBe(status.FAILED_PRECONDITION);
    expect(err?.details).toBe(message);
    expect(errorDetailOf(err!)?.leaderAddress).toBe("127.0.0.1:9");
    expect(errorDetailOf(err!)?.leaderId).toBe(3n);
  });

  it("ends a call whose deadline passes with DEADLINE_EXCEEDED, and drops the late answer", async () => {
    let late: (() => void) | undefined;
    const addr = await serve((call, cb) => {
      late = () => cb(null, grant(call.request));
    });
    const c = ledgerClient(addr);
    const { err } = await lease(c, req(), { deadline: Date.now() + 100 });
    expect(err?.code).toBe(status.DEADLINE_EXCEEDED);
    late!(); // Must not throw or write to the closed stream.
    // The server still answers the next call.
    const addr2 = await serve((call, cb) => cb(null, grant(call.request)));
    expect((await lease(ledgerClient(addr2), req(3n))).res?.grant?.end).toBe(3n);
  });

  it("refuses a request over the size limit with RESOURCE_EXHAUSTED, without calling the handler", async () => {
    let calls = 0;
    const addr = await serve((call, cb) => {
      calls++;
      cb(null, grant(call.request));
    });
    const { err } = await lease(ledgerClient(addr), { ...req(), sequence: "x".repeat(2_000) });
    expect(err?.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(err?.details).toMatch(/larger than the limit of 1024/);
    expect(calls).toBe(0);
  });

  it("reserves memory for a message as its bytes arrive, not as its size header announces", async () => {
    const limits = { maxReceiveBytes: 64 * 1024 * 1024, maxSendBytes: 1024 };
    let got = 0;
    const addr = await serve(
      (call, cb) => {
        got = call.request.sequence.length;
        cb(null, grant({ ...call.request, sequence: "s" }));
      },
      undefined,
      limits,
    );
    const path = LedgerService.leaseSegment.path;
    // 100 calls that announce 60 MiB each and send 10 bytes: 6 GiB, were it reserved up front.
    const session = connect(`http://${addr}`);
    cleanups.push(() => session.destroy());
    const before = process.memoryUsage().arrayBuffers;
    const held: ReturnType<typeof session.request>[] = [];
    for (let i = 0; i < 100; i++) {
      const r = session.request({
        ":method": "POST",
        ":path": path,
        "content-type": "application/grpc",
        te: "trailers",
      });
      r.on("error", () => undefined);
      const head = Buffer.alloc(15);
      head.writeUInt32BE(60 * 1024 * 1024, 1);
      r.write(head);
      held.push(r);
    }
    // A whole call on the same connection after them: once it is answered, the server has read
    // every frame sent before it.
    const probe = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
    });
    const answered = new Promise<void>((resolve) => probe.on("trailers", () => resolve()));
    probe.on("data", () => undefined);
    probe.end(frame(LedgerService.leaseSegment.requestSerialize(req())));
    await answered;
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 1024 * 1024);
    for (const r of held) r.close();

    // A large message sent in small pieces still arrives whole.
    const big = LedgerService.leaseSegment.requestSerialize({ ...req(), sequence: "q".repeat(3_000_000) });
    const f = frame(big);
    const r = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
    });
    const done = new Promise<void>((resolve) => r.on("trailers", () => resolve()));
    r.on("data", () => undefined);
    for (let off = 0; off < f.byteLength; off += 10_000) r.write(f.subarray(off, off + 10_000));
    r.end();
    await done;
    expect(got).toBe(3_000_000);
  });

  it("bounds connections, closes idle ones, and ends an unanswered call at the default deadline", async () => {
    const addr = await serve(
      () => undefined, // never answers
      undefined,
      {
        maxReceiveBytes: 1024,
        maxSendBytes: 1024,
        maxConnections: 2,
        idleTimeoutMs: 300,
        defaultDeadlineMs: 200,
      },
    );
    // A call without a deadline of its own still ends.
    const c = ledgerClient(addr);
    const { err } = await lease(c, req());
    expect(err?.code).toBe(status.DEADLINE_EXCEEDED);

    // Two connections are served (with `c`'s); a third is closed on accept.
    const open = (): Promise<{ how: "connected" | "closed"; s: ReturnType<typeof connect>; at: number }> =>
      new Promise((resolve) => {
        const s = connect(`http://${addr}`);
        cleanups.push(() => s.destroy());
        s.on("error", () => undefined);
        s.once("remoteSettings", () => resolve({ how: "connected", s, at: performance.now() }));
        s.once("close", () => resolve({ how: "closed", s, at: performance.now() }));
      });
    const second = await open();
    expect(second.how).toBe("connected");
    expect((await open()).how).toBe("closed");

    // The second, idle, is closed by the server (GOAWAY) once idle for 300 ms.
    await new Promise<void>((resolve) => {
      second.s.once("goaway", () => resolve());
      second.s.once("close", () => resolve());
    });
    expect(performance.now() - second.at).toBeGreaterThanOrEqual(250);
  });

  it("refuses a response over the size limit with RESOURCE_EXHAUSTED", async () => {
    const addr = await serve((call, cb) =>
      cb(null, {
        ...grant(call.request),
        grant: { ...grant(call.request).grant!, sequence: "y".repeat(2_000) },
      }),
    );
    const { err } = await lease(ledgerClient(addr), req());
    expect(err?.code).toBe(status.RESOURCE_EXHAUSTED);
  });

  it("answers unknown methods, garbage, compression, a cut message and two requests with a clear status", async () => {
    let calls = 0;
    const addr = await serve((call, cb) => {
      calls++;
      cb(null, grant(call.request));
    });
    const good = frame(LedgerService.leaseSegment.requestSerialize(req()));
    const path = LedgerService.leaseSegment.path;

    // An answer carries only what gRPC needs: no `date` header for the client to decode.
    const answered = await raw(addr, { ":path": path }, good);
    expect(answered).toMatchObject({ status: 200, grpcStatus: "0" });
    expect(answered.headers.sort()).toEqual([":status", "content-type"]);

    const unknown = await raw(addr, { ":path": "/dispenser.ledger.v1.Ledger/Nope" }, good);
    expect(unknown).toMatchObject({ status: 200, grpcStatus: String(status.UNIMPLEMENTED) });
    expect(unknown.headers).not.toContain("date");
    expect(unknown.message).toMatch(/unknown method/);

    const garbage = await raw(addr, { ":path": path }, frame(Buffer.from([0xff, 0xff, 0xff, 0xff])));
    expect(garbage).toMatchObject({ grpcStatus: String(status.INTERNAL) });
    expect(garbage.message).toMatch(/malformed request/);

    const zipped = await raw(addr, { ":path": path }, frame(Buffer.from([1, 2, 3]), 1));
    expect(zipped.grpcStatus).toBe(String(status.UNIMPLEMENTED));
    const gzipHeader = await raw(addr, { ":path": path, "grpc-encoding": "gzip" }, good);
    expect(gzipHeader.grpcStatus).toBe(String(status.UNIMPLEMENTED));

    const cut = await raw(addr, { ":path": path }, good.subarray(0, good.byteLength - 2));
    expect(cut.grpcStatus).toBe(String(status.INTERNAL));
    expect(cut.message).toMatch(/inside a message/);

    const none = await raw(addr, { ":path": path }, Buffer.alloc(0));
    expect(none.grpcStatus).toBe(String(status.UNIMPLEMENTED));

    const two = await raw(addr, { ":path": path }, Buffer.concat([good, good]));
    expect(two.grpcStatus).toBe(String(status.UNIMPLEMENTED));
    expect(two.message).toMatch(/more than one request/);

    const timeout = await raw(addr, { ":path": path, "grpc-timeout": "soon" }, good);
    expect(timeout.grpcStatus).toBe(String(status.INTERNAL));

    expect((await raw(addr, { ":path": path, ":method": "GET" }, Buffer.alloc(0))).status).toBe(405);
    expect((await raw(addr, { ":path": path, "content-type": "text/plain" }, good)).status).toBe(415);
    expect(calls).toBe(1); // the good request only

    // A request split across many DATA frames, header included, is put back together.
    const session = connect(`http://${addr}`);
    cleanups.push(() => session.destroy());
    const r = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
    });
    const parts: Buffer[] = [];
    r.on("data", (d: Buffer) => parts.push(d));
    let trailers: IncomingHttpHeaders = {};
    r.on("trailers", (t: IncomingHttpHeaders) => (trailers = t));
    for (let i = 0; i < good.byteLength; i += 3) r.write(good.subarray(i, i + 3));
    r.end();
    await new Promise<void>((res) => r.once("close", () => res()));
    expect(trailers["grpc-status"]).toBe("0");
    const body = Buffer.concat(parts);
    expect(LedgerService.leaseSegment.responseDeserialize(body.subarray(5)).grant?.end).toBe(10n);
    expect(calls).toBe(2);
  });

  it("streams a client's messages in order, and tells the handler when the client goes away", async () => {
    const got: string[] = [];
    let ended = false;
    let errored = false;
    const addr = await serve(
      (call, cb) => cb(null, grant(call.request)),
      (call, cb) => {
        call.on("data", (b: MessageBatch) => got.push(b.clusterId));
        call.on("error", () => (errored = true));
        call.on("end", () => {
          ended = true;
          // A stream that sent "y" is left unanswered: it is cut from the client side below.
          if (!got.includes("y")) cb(null, {});
        });
      },
      { maxReceiveBytes: 1 << 20, maxSendBytes: 1024 },
    );
    const peer = new PeerClient(addr, credentials.createInsecure());
    cleanups.push(() => peer.close());
    const done = new Promise<ServiceError | null>((resolve) => {
      const call = peer.stream((err) => resolve(err));
      for (let i = 0; i < 50; i++) call.write({ clusterId: `c${i}`, from: 1n, to: 2n, messages: [] });
      // A big one spans several DATA frames.
      call.write({ clusterId: "x".repeat(100_000), from: 1n, to: 2n, messages: [] });
      call.end();
    });
    expect(await done).toBeNull();
    expect(got.slice(0, 50)).toEqual(Array.from({ length: 50 }, (_, i) => `c${i}`));
    expect(got[50]).toHaveLength(100_000);
    expect(ended).toBe(true);
    expect(errored).toBe(false);

    // A client whose connection breaks while its call is unanswered: the handler hears of it.
    // (node:http2 reports an "end" first, as for a cancel from grpc-js, which half-closes the
    // stream before resetting it: to any server that looks like a client done writing.)
    const session = connect(`http://${addr}`);
    const r = session.request({
      ":method": "POST",
      ":path": PeerService.stream.path,
      "content-type": "application/grpc",
      te: "trailers",
    });
    r.on("error", () => {});
    r.write(frame(MessageBatchCodec.encode(MessageBatchCodec.fromPartial({ clusterId: "y" })).finish()));
    const until = Date.now() + 2_000;
    while (!got.includes("y") && Date.now() < until) await new Promise((res) => setTimeout(res, 10));
    session.destroy();
    while (!errored && Date.now() < until) await new Promise((res) => setTimeout(res, 10));
    expect(errored).toBe(true);
  });

  it("refuses a service it cannot serve", () => {
    const server = new GrpcServer({ maxReceiveBytes: 1, maxSendBytes: 1 });
    expect(() => server.addService(PeerService, {})).toThrow(/no implementation/);
  });
});
