// The Redis-protocol server. Per connection: a streaming parser, commands run one at a time in
// arrival order (a draw that waits for a segment holds the commands behind it, so replies stay in
// request order), and the replies of one read batch leave in one socket write (or several, once
// 64 KiB are pending). Limits: the parser bounds frame size, argument count and buffered input; a
// connection stops reading while a command waits; and it stops *executing* while more than
// maxPendingOutputBytes of its replies are unsent (input already parsed waits, so a pipeline of
// GETNs cannot draw millions of ids into memory for a client that does not read), and is closed
// when it has not read for slowClientTimeoutMs.
import type { Socket } from "node:net";
import { createServer } from "node:net";
import type { Server } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import type { ServerTls } from "@dispenser/plumbing";
import { tlsServerOptions } from "@dispenser/plumbing";
import type { Logger } from "pino";
import type { Dispenser } from "../issuing/dispenser.js";
import type { EdgeMetrics } from "../metrics.js";
import type { RespLimits } from "../resp/index.js";
import { ReplyWriter, RespParser } from "../resp/index.js";
import type { ConnState, ServerInfo } from "./commands/index.js";
import { BEFORE_AUTH, COMMAND_ROLES, COMMANDS, get, idsAsked, unknownCommand } from "./commands/index.js";
import type { User, Users } from "../auth/users.js";
import { allows } from "../auth/users.js";
import type { LoginThrottle } from "../auth/login-throttle.js";

export const EDGE_VERSION = "7.0.0-dispenser-0.1.0";

export interface RespServerOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  /**
   * Speak RESP over TLS (Redis's tls-port) with this certificate; with its `ca`, clients must show
   * a certificate that CA signed (Redis's tls-auth-clients yes). Unset: plaintext.
   */
  readonly tls?: ServerTls;
  /** Who may log in, with what role and caps; undefined: no AUTH (the dev mode). */
  readonly users: Users | undefined;
  readonly metrics?: EdgeMetrics;
  readonly logger?: Logger;
  readonly limits?: Partial<RespLimits>;
  /** DC-wide counts of a sequence from the Redis plane (or why not); undefined without a plane. */
  readonly dcStats?: ServerInfo["dcStats"];
  /** Open connections at once; more are closed on accept. Default 10,000. */
  readonly maxConnections?: number;
  /** Unsent reply bytes per connection above which its commands wait. Default 4 MiB. */
  readonly maxPendingOutputBytes?: number;
  /** A connection whose replies stay above that bound this long is closed. Default 30 s. */
  readonly slowClientTimeoutMs?: number;
  /**
   * A connection that leaves a command incomplete this long is closed (a client that trickles a
   * byte at a time would otherwise hold its slot forever). Default 30 s.
   */
  readonly partialCommandTimeoutMs?: number;
  /** With users, a connection not logged in this long after connecting is closed. Default 10 s. */
  readonly authTimeoutMs?: number;
  /**
   * A connection with no traffic either way this long is closed (Redis's `timeout`), so leaked or
   * abandoned connections give their slots back. Default 1 hour; 0: never. Pools reconnect.
   */
  readonly idleTimeoutMs?: number;
  /** Slows down failed AUTHs per client address (shared with gRPC); unset: per connection only. */
  readonly throttle?: LoginThrottle;
}

const DEFAULT_MAX_CONNECTIONS = 10_000;
const DEFAULT_IDLE_TIMEOUT_MS = 60 * 60_000;
/** With TLS: sockets beyond the cap let in to hear "max number of clients reached" once shaken hands. */
const HANDSHAKES_BEYOND_CAP = 64;

/** A reply bigger than this is a bug: the largest (GETN of 10,000 ids, ECHO) are far below it. */
const MAX_REPLY_BYTES = 64 * 1024 * 1024;

/** The command name GET, in any case. */
function isGet(name: string): boolean {
  return name === "GET" || name === "get" || (name.length === 3 && name.toUpperCase() === "GET");
}

let nextClientId = 1;

class Connection {
  private readonly parser: RespParser;
  /** Replies of one read batch, encoded straight into one buffer (strings as latin1). */
  private readonly w = new ReplyWriter({ maxBytes: MAX_REPLY_BYTES });
  private readonly state: ConnState;
  /** A command is waiting on a promise: the ones behind it wait too. */
  private busy = false;
  /** Too many replies are unsent: nothing more runs until the socket drains. */
  private blocked: NodeJS.Timeout | undefined;
  private closed = false;
  /** Closes the connection if the command its client started is still incomplete when it fires. */
  private partial: NodeJS.Timeout | undefined;
  /** Commands run so far, and that count when `partial` was armed: any progress restarts it. */
  private ran = 0;
  private ranAtArming = 0;
  /** Closes the connection if nobody has logged in on it when it fires. */
  private authDeadline: NodeJS.Timeout | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly d: Dispenser,
    private readonly info: ServerInfo,
    private readonly o: RespServerOptions,
  ) {
    this.parser = new RespParser(o.limits);
    this.state = {
      proto: 2,
      authed: info.users === undefined,
      user: undefined,
      capped: false,
      authFailures: 0,
      remote: socket.remoteAddress,
      name: "",
      id: nextClientId++,
      quit: false,
      checkedName: "",
    };
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => {
      this.parser.feed(chunk);
      this.run();
      this.watchPartial();
    });
    socket.on("drain", () => this.unblock());
    socket.on("close", () => {
      this.closed = true;
      if (this.blocked !== undefined) clearTimeout(this.blocked);
      clearTimeout(this.partial);
      clearTimeout(this.authDeadline);
    });
    if (!this.state.authed) {
      this.authDeadline = setTimeout(() => {
        if (!this.state.authed) this.socket.destroy();
      }, o.authTimeoutMs ?? 10_000);
    }
    const idleMs = o.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    if (idleMs > 0) {
      socket.setTimeout(idleMs);
      // Silence while a command waits is not idleness: only a connection at rest is closed.
      socket.on("timeout", () => {
        if (!this.busy) this.end();
      });
    }
    socket.on("error", () => this.socket.destroy());
  }

  /** Runs parsed commands until one is pending or input runs out, then writes the batch. */
  private run(): void {
    while (!this.busy && !this.closed && this.blocked === undefined) {
      const ev = this.parser.next();
      if (ev === undefined) break;
      if (ev.kind === "error") {
        this.o.metrics?.rejected.inc({ api: "resp", code: "protocol" });
        this.w.error(ev.message);
        if (ev.fatal) {
          this.flush();
          this.end();
          return;
        }
        continue;
      }
      this.dispatch(ev.args);
      if (this.state.quit) {
        this.flush();
        this.end();
        return;
      }
      if (this.w.wantsFlush) this.flush();
    }
    this.flush();
  }

  private dispatch(args: string[]): void {
    this.ran++;
    this.w.protocol = this.state.proto;
    // The hot path skips the command table (and the case folding of the name) for GET.
    const getFast = args.length === 2 && this.state.authed && !this.state.capped && isGet(args[0]!);
    const name = getFast ? "GET" : (args[0] ?? "").toUpperCase();
    const h = getFast ? get : COMMANDS[name];
    if (h === undefined) {
      this.o.metrics?.rejected.inc({ api: "resp", code: "unknown-command" });
      return this.w.error(unknownCommand(args));
    }
    if (!this.state.authed && !BEFORE_AUTH.has(name)) {
      return this.w.error("NOAUTH Authentication required.");
    }
    const user = this.state.user;
    if (user !== undefined && !getFast) {
      const refused = this.permission(user, name, args);
      if (refused) return this.w.error(refused);
    }
    const p = h(this.d, args, this.w, this.state, this.info);
    if (p instanceof Promise) this.waitFor(p);
  }

  /** Why `user` may not run this command now (its role, its caps), or undefined. */
  private permission(user: User, name: string, args: readonly string[]): string | undefined {
    const role = name === "INFO" && args.length < 2 ? undefined : COMMAND_ROLES[name];
    if (role !== undefined && !allows(user, role))
      return `NOPERM User ${user.name} has no permissions to run the '${name.toLowerCase()}' command`;
    if (!this.state.capped) return undefined;
    const n = idsAsked(name, args);
    const refused = n > 0 ? this.info.users?.admit(user, n) : undefined;
    if (!refused) return undefined;
    return `${refused.over === "rate" ? "BUSY" : "NOPERM"} ${refused.message}`;
  }

  /** A command answers when `p` settles: the ones behind it wait, and reading stops meanwhile. */
  private waitFor(p: Promise<void>): void {
    this.busy = true;
    // Stop reading while a command waits: unread input must not pile up behind it.
    this.socket.pause();
    p.then(
      () => this.resumeAfter(),
      (e: unknown) => {
        this.w.error(`ERR internal error: ${e instanceof Error ? e.message : String(e)}`);
        this.resumeAfter();
      },
    );
  }

  private resumeAfter(): void {
    this.busy = false;
    if (!this.closed && this.blocked === undefined) this.socket.resume();
    if (this.state.quit) {
      this.flush();
      this.end();
      return;
    }
    this.run();
  }

  private flush(): void {
    const out = this.w.take();
    if (out === undefined || this.closed) return;
    this.socket.write(out);
    // Never below the socket's high-water mark: "drain", which unblocks, only comes after a write
    // that went past it.
    const max = Math.max(this.o.maxPendingOutputBytes ?? 4 * 1024 * 1024, this.socket.writableHighWaterMark);
    if (this.socket.writableLength > max && this.blocked === undefined) this.block();
  }

  /** Stop reading and executing until the client reads; close it if it does not in time. */
  private block(): void {
    this.socket.pause();
    const ms = this.o.slowClientTimeoutMs ?? 30_000;
    this.blocked = setTimeout(() => {
      this.o.metrics?.rejected.inc({ api: "resp", code: "slow-client" });
      this.o.logger?.warn(
        { client: this.state.id, unsent: this.socket.writableLength },
        `closing a RESP client whose unsent replies stayed above the bound for ${ms} ms`,
      );
      this.closed = true;
      this.socket.destroy();
    }, ms);
    this.blocked.unref();
  }

  private unblock(): void {
    if (this.blocked === undefined) return;
    clearTimeout(this.blocked);
    this.blocked = undefined;
    if (this.closed) return;
    if (!this.busy) this.socket.resume();
    this.run();
  }

  /**
   * Input left over after running what could run is an incomplete command (unless a command is
   * waiting or replies are backed up: then the server is the slow one). It must complete in time.
   */
  private watchPartial(): void {
    const incomplete = !this.busy && this.blocked === undefined && this.parser.midCommand;
    if (!incomplete) {
      clearTimeout(this.partial);
      this.partial = undefined;
    } else if (this.partial === undefined) {
      this.ranAtArming = this.ran;
      this.partial = setTimeout(() => {
        this.partial = undefined;
        if (this.closed) return;
        // A pipelining client often ends a chunk inside a command: only a client that completed
        // no command in all that time is stuck (or trickling on purpose).
        const progressed = this.ran !== this.ranAtArming;
        if (progressed || this.busy || this.blocked !== undefined || !this.parser.midCommand)
          return this.watchPartial();
        this.o.metrics?.rejected.inc({ api: "resp", code: "partial-timeout" });
        this.socket.destroy();
      }, this.o.partialCommandTimeoutMs ?? 30_000);
    }
  }

  private end(): void {
    this.closed = true;
    if (this.blocked !== undefined) clearTimeout(this.blocked);
    this.socket.end();
  }

  /** Close once the command in flight (if any) has been answered. */
  drain(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        if (this.busy) {
          setTimeout(done, 5).unref();
          return;
        }
        this.flush();
        this.closed = true;
        this.socket.end(() => resolve());
        setTimeout(() => (this.socket.destroy(), resolve()), 1_000).unref();
      };
      this.socket.pause();
      done();
    });
  }
}

export class RespServer {
  private readonly server: Server;
  private readonly conns = new Set<Connection>();
  /** With TLS: every TCP socket under the server, handshakes included. */
  private readonly raw = new Set<Socket>();
  private info: ServerInfo | undefined;

  constructor(
    private readonly d: Dispenser,
    private readonly o: RespServerOptions,
  ) {
    const tls = o.tls;
    if (tls) {
      const server = createTlsServer(tlsServerOptions(tls, true), (socket) => this.accept(socket));
      // A failed handshake (plaintext, no or a stranger's certificate, too slow) closes that socket.
      server.on("tlsClientError", (e, socket) => {
        this.o.logger?.debug({ err: e.message }, "TLS handshake failed");
        socket.destroy();
      });
      // Sockets still shaking hands are no Connection yet: close() cuts them.
      server.on("connection", (raw: Socket) => {
        this.raw.add(raw);
        raw.once("close", () => this.raw.delete(raw));
      });
      // Handshakes under way hold memory too: bound them with the connections.
      server.maxConnections = (o.maxConnections ?? DEFAULT_MAX_CONNECTIONS) + HANDSHAKES_BEYOND_CAP;
      this.server = server;
    } else {
      this.server = createServer((socket) => this.accept(socket));
    }
  }

  private accept(socket: Socket): void {
    const max = this.o.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    if (this.conns.size >= max || this.info === undefined) {
      socket.end("-ERR max number of clients reached\r\n");
      return;
    }
    const c = new Connection(socket, this.d, this.info, this.o);
    this.conns.add(c);
    this.o.metrics?.respConnections.inc();
    socket.on("close", () => {
      this.conns.delete(c);
      this.o.metrics?.respConnections.dec();
    });
  }

  /** Open connections. */
  get connections(): number {
    return this.conns.size;
  }

  /** Starts listening; resolves with the bound port. */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.o.port, this.o.host, () => {
        const a = this.server.address();
        const port = typeof a === "object" && a ? a.port : this.o.port;
        this.info = {
          version: EDGE_VERSION,
          users: this.o.users,
          host: this.o.host,
          port,
          startedAtMs: Date.now(),
          connections: () => this.conns.size,
          ...(this.o.dcStats ? { dcStats: this.o.dcStats } : {}),
          ...(this.o.throttle ? { throttle: this.o.throttle } : {}),
        };
        resolve(port);
      });
    });
  }

  /** Stop accepting, answer what is in flight on every connection, close them. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.all([...this.conns].map((c) => c.drain()));
    for (const s of this.raw) s.destroy();
    await closed;
  }
}
