import type {
  ClientHttp2Session,
  ClientHttp2Stream,
  IncomingHttpHeaders,
  SecureClientSessionOptions,
} from "node:http2";
import { connect, constants } from "node:http2";
import { status } from "@grpc/grpc-js";

/** How a client stream ended: a gRPC status code and its message. */
export interface StreamEnd {
  code: status;
  details: string;
}

/** First and longest wait before connecting again to a peer that could not be reached. */
const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 1_000;
/** A connection whose peer has not answered a ping (or not connected) within this long is dropped. */
const KEEPALIVE_MS = 5_000;

/**
 * The client side of a gRPC client-streaming call, written straight onto node:http2: the same
 * wire (POST, `application/grpc`, 5-byte length-prefixed messages, `grpc-status` in the trailers,
 * so the peer's grpc-js server cannot tell), without grpc-js's per-message client stack
 * (interceptors, retry buffering, a compression filter and several promise and nextTick hops).
 * That stack cost a leader about 0.2 ms of CPU per append to each follower, on the critical path
 * of every commit. Used for the peers' long-lived Stream call only; all other calls use grpc-js.
 */
export class H2Channel {
  private session: ClientHttp2Session | undefined;
  private connected = false;
  private notBefore = 0;
  private backoffMs = FIRST_BACKOFF_MS;
  private closed = false;

  constructor(
    private readonly address: string,
    /** TLS to the peer (our certificate, the CA, and the check of the peer's), or plaintext. */
    private readonly tls?: SecureClientSessionOptions,
    /** Ping period; a ping unanswered by the next one ends the connection. */
    private readonly keepaliveMs = KEEPALIVE_MS,
  ) {}

  /**
   * Open a client stream to `path`. `onEnd` is called once, with the status the server ended it
   * with or UNAVAILABLE when the link broke. Returns undefined while reconnecting is backed off.
   */
  open(
    path: string,
    metadata: Readonly<Record<string, string>>,
    onEnd: (end: StreamEnd) => void,
  ): H2Stream | undefined {
    const session = this.liveSession();
    if (!session) return undefined;
    let req: ClientHttp2Stream;
    try {
      req = session.request(
        {
          ":method": "POST",
          ":path": path,
          "content-type": "application/grpc",
          te: "trailers",
          ...metadata,
        },
        { endStream: false },
      );
    } catch {
      // The session died between the check and the request (GOAWAY, socket error).
      session.destroy();
      return undefined;
    }
    return new H2Stream(req, onEnd);
  }

  close(): void {
    this.closed = true;
    this.session?.destroy();
    this.session = undefined;
  }

  private liveSession(): ClientHttp2Session | undefined {
    if (this.closed) return undefined;
    const s = this.session;
    if (s && !s.closed && !s.destroyed) return s;
    if (Date.now() < this.notBefore) return undefined;
    const session = this.tls
      ? connect(`https://${this.address}`, this.tls)
      : connect(`http://${this.address}`);
    this.session = session;
    this.connected = false;
    let connected = false;
    session.once("connect", () => {
      connected = this.connected = true;
      this.backoffMs = FIRST_BACKOFF_MS;
    });
    // A peer whose machine vanished sends no reset: without pings, appends would queue behind a
    // dead connection until TCP gives up, minutes later. A stopped (SIGSTOP) peer is dropped the
    // same way and reconnected when it answers again.
    let awaitingPong = false;
    const keepalive = setInterval(() => {
      if (session.destroyed || session.closed) return;
      if (!connected || awaitingPong) {
        session.destroy();
        return;
      }
      awaitingPong = true;
      session.ping((err) => {
        if (!err) awaitingPong = false;
      });
    }, this.keepaliveMs);
    keepalive.unref();
    // Errors also reach the streams (which report them); the session's own are expected noise
    // while a peer is down.
    session.on("error", () => {});
    session.once("close", () => {
      clearInterval(keepalive);
      if (this.session === session) this.session = undefined;
      if (!this.connected) {
        this.notBefore = Date.now() + this.backoffMs;
        this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
      } else {
        this.notBefore = Date.now() + FIRST_BACKOFF_MS;
      }
    });
    // An idle link to a peer keeps no timer or ref alive: a stopping node must be able to exit.
    session.unref();
    return session;
  }
}

/** One open client stream: length-prefixed message writes with back-pressure. */
export class H2Stream {
  private done = false;
  private statusHeader: IncomingHttpHeaders | undefined;

  constructor(
    private readonly req: ClientHttp2Stream,
    private readonly onEnd: (end: StreamEnd) => void,
  ) {
    // The call ends when the server sends its status, whether or not this side is done writing
    // (a refusal comes while the stream is open): report it and close this side too.
    req.on("response", (headers) => {
      // A trailers-only answer (an immediate refusal) carries the status in the headers.
      if (headers["grpc-status"] !== undefined) this.statusReceived(headers);
    });
    req.on("trailers", (trailers: IncomingHttpHeaders) => this.statusReceived(trailers));
    req.on("data", () => {}); // SendAck (empty) at the very end; keep the stream flowing.
    req.on("error", () => {}); // Reported by "close" below.
    req.once("close", () => this.finish());
  }

  /** Write one serialized message; false when the buffer is full (wait for `onDrain`). */
  write(message: Uint8Array): boolean {
    const frame = Buffer.allocUnsafe(5 + message.byteLength);
    frame[0] = 0; // not compressed
    frame.writeUInt32BE(message.byteLength, 1);
    frame.set(message, 5);
    return this.req.write(frame);
  }

  onDrain(f: () => void): void {
    this.req.once("drain", f);
  }

  /** Cancel the call (the peer sees CANCELLED). */
  cancel(): void {
    if (!this.req.closed && !this.req.destroyed) this.req.close(constants.NGHTTP2_CANCEL);
  }

  private statusReceived(status: IncomingHttpHeaders): void {
    this.statusHeader = status;
    this.finish();
    if (!this.req.closed && !this.req.destroyed) this.req.close();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    const h = this.statusHeader;
    const raw = h?.["grpc-status"];
    if (raw === undefined) {
      const cancelled = this.req.rstCode === constants.NGHTTP2_CANCEL;
      this.onEnd({
        code: cancelled ? status.CANCELLED : status.UNAVAILABLE,
        details: cancelled ? "cancelled" : `stream closed without a status (HTTP/2 code ${this.req.rstCode})`,
      });
      return;
    }
    const msg = h?.["grpc-message"];
    let details = typeof msg === "string" ? msg : "";
    try {
      details = decodeURIComponent(details);
    } catch {
      // Not percent-encoded after all: keep it as sent.
    }
    const code: status = Number(raw);
    this.onEnd({ code, details });
  }
}
