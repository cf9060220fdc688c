// One edge process: the issuing core, its gRPC and Redis-protocol servers, and /metrics. stop() is
// the SIGTERM path: stop accepting, answer what is in flight, hand unused tails back, then close.
import type { Server as HttpServer } from "node:http";
import { GrpcServer, isLoopback, serveMetrics, splitHostPort } from "@dispenser/plumbing";
import type { ServerTls, TlsMaterial } from "@dispenser/plumbing";
import { DispenserService } from "@dispenser/proto";
import type { Logger } from "pino";
import { collectDefaultMetrics, Registry } from "prom-client";
import { createDispenserService } from "./grpc/dispenser-service.js";
import type { ReturnReport } from "./issuing/dispenser.js";
import { Dispenser } from "./issuing/dispenser.js";
import { Users } from "./auth/users.js";
import { LoginThrottle } from "./auth/login-throttle.js";
import { GrpcLedgerPort } from "./ledger/grpc-ledger-port.js";
import type { LedgerPort } from "./ledger/ledger-port.js";
import { EdgeMetrics } from "./metrics.js";
import { RespServer } from "./server/resp-server.js";
import { EdgeJournal } from "./issuing/journal.js";
import { PlaneReporter } from "./plane-reporter.js";
import { RedisPlane, ReservePool } from "./redis/index.js";
import { DcReserve } from "./issuing/dc-reserve.js";
import { Cluster } from "ioredis";

/** Largest gRPC message in either direction (an IssueBatch answer is a range or a few thousand ids). */
const MAX_GRPC_MESSAGE_BYTES = 4 * 1024 * 1024;
/** How long calls in flight may finish at shutdown before their connections are cut. */
const SHUTDOWN_GRACE_MS = 5_000;

export interface EdgeNodeOptions {
  /** This edge's datacenter. */
  readonly dc: number;
  /** Ledger node addresses (host:port), unless `ledger` is given. */
  readonly ledgerEndpoints: readonly string[];
  /** TLS to the ledger: its CA, and this edge's certificate (role edge) and key. Unset: plaintext. */
  readonly ledgerTls?: TlsMaterial;
  /** A LedgerPort to use instead of gRPC to `ledgerEndpoints`. */
  readonly ledger?: LedgerPort;
  /** host:port of the gRPC Dispenser service; undefined for none. */
  readonly grpcListen: string | undefined;
  /** host:port of the Redis-protocol server; undefined for none. */
  readonly respListen: string | undefined;
  /** Sequences with series of their own in /metrics; the rest are summed as "(other)". Default 1,000. */
  readonly metricsMaxSequences?: number;
  /** A RESP connection idle this long is closed; 0: never. Default 1 hour. */
  readonly respIdleTimeoutMs?: number;
  /** host:port of the Redis-protocol server over TLS (needs `tls`); undefined for none. */
  readonly respTlsListen?: string;
  /**
   * This edge's server certificate: gRPC is served over TLS, and RESP on `respTlsListen`. With a
   * `ca`, clients of both must show a certificate it signed. Unset: plaintext gRPC.
   */
  readonly tls?: ServerTls;
  /** host:port of /metrics; undefined for none. */
  readonly metricsListen: string | undefined;
  /** RESP AUTH password of the user `default` (an admin); undefined for none. */
  readonly password: string | undefined;
  /** A users file (see auth/users.ts): who may draw or change the catalog, over RESP and gRPC. */
  readonly usersFile?: string;
  readonly edgeId?: string;
  readonly drawTimeoutMs?: number;
  readonly permutationSecret?: string;
  /** Redis Cluster nodes (host:port) of this DC's plane; empty or undefined: no plane. */
  readonly redisNodes?: readonly string[];
  /** Seconds of the DC's draw rate its reserve pool holds (with `redisNodes`); 0 turns it off. Default 900. */
  readonly reserveSeconds?: number;
  /** Replicas every carve from the pool must reach at the least. Default 1. */
  readonly redisMinReplicas?: number;
  /** Directory of the edge's journal (counts across restarts, crash waste); undefined: none. */
  readonly dataDir?: string;
  readonly logger: Logger;
}

/** Seconds of the DC's draw rate its reserve pool holds by default (with a Redis plane): 15 minutes. */
export const DEFAULT_RESERVE_SECONDS = 900;

/** What an operator should hear about ports open beyond this machine without TLS or users. */
export function exposureWarnings(o: EdgeNodeOptions): string[] {
  const out: string[] = [];
  const exposed = (listen: string | undefined): boolean => listen !== undefined && !isLoopback(listen);
  if (exposed(o.grpcListen) && !o.tls)
    out.push(
      `gRPC on ${o.grpcListen} is plaintext: tokens and ids cross the network in the clear (--tls-cert)`,
    );
  if (exposed(o.respListen))
    out.push(
      `RESP on ${o.respListen} is plaintext: passwords and ids cross the network in the clear (--resp-tls-listen)`,
    );
  if (
    (exposed(o.grpcListen) || exposed(o.respListen) || exposed(o.respTlsListen)) &&
    o.usersFile === undefined
  )
    out.push(
      o.password === undefined
        ? "no --users: anyone who reaches this edge may draw ids and change the catalog"
        : "no --users: gRPC calls need no token (--password guards RESP only)",
    );
  if (o.ledgerTls === undefined && o.ledger === undefined && o.ledgerEndpoints.some((a) => !isLoopback(a)))
    out.push("the ledger is reached in plaintext (--ledger-tls-ca, --ledger-tls-cert, --ledger-tls-key)");
  return out;
}

export class EdgeNode {
  readonly registry = new Registry();
  readonly dispenser: Dispenser;
  readonly metrics: EdgeMetrics;
  private grpc: GrpcServer | undefined;
  private resp: RespServer | undefined;
  private respTls: RespServer | undefined;
  private http: HttpServer | undefined;
  private readonly redis: Cluster | undefined;
  /** The DC's reserve pool, with a Redis plane and reserveSeconds > 0. */
  readonly reserve: DcReserve | undefined;
  private reporter: PlaneReporter | undefined;
  /** Who may log in over RESP and gRPC; undefined: anyone, as an admin (the dev mode). */
  private readonly users: Users | undefined;
  /** Failed logins per client address, over RESP and gRPC alike. */
  private readonly throttle = new LoginThrottle();
  /** Bound ports (useful when listening on port 0). */
  grpcPort = 0;
  respPort = 0;
  respTlsPort = 0;
  metricsPort = 0;

  constructor(private readonly o: EdgeNodeOptions) {
    const fromFile = o.usersFile !== undefined ? Users.load(o.usersFile) : undefined;
    this.users = o.password !== undefined ? Users.withPassword(o.password, fromFile) : fromFile;
    const ledger =
      o.ledger ??
      new GrpcLedgerPort({ endpoints: o.ledgerEndpoints, ...(o.ledgerTls ? { tls: o.ledgerTls } : {}) });
    const log = o.logger;
    if (o.redisNodes && o.redisNodes.length > 0) {
      // Connects at start() (or at its first command).
      this.redis = new Cluster(
        o.redisNodes.map((a) => splitHostPort(a)),
        {
          lazyConnect: true,
          enableOfflineQueue: true,
          // A command whose reply was lost is never sent again on a new connection: a window
          // added twice, or a WAIT on a connection that ran nothing, would mislead the reserve.
          redisOptions: {
            commandTimeout: 1_000,
            maxRetriesPerRequest: 1,
            autoResendUnfulfilledCommands: false,
          },
        },
      );
      this.redis.on("error", () => undefined); // reported by the plane reporter, once per outage
      const seconds = o.reserveSeconds ?? DEFAULT_RESERVE_SECONDS;
      if (seconds > 0) {
        this.reserve = new DcReserve({
          pool: new ReservePool(this.redis, {
            callTimeoutMs: 1_000,
            waitMs: 500,
            minReplicas: o.redisMinReplicas ?? 1,
          }),
          reserveSeconds: seconds,
          now: Date.now,
          probe: (name) => ledger.getSequence(name),
          hooks: {
            onBurnt: (name, ids, why) => {
              this.metrics.reserveBurnt.inc({ sequence: this.metrics.sequenceLabel(name) }, Number(ids));
              log.warn({ sequence: name, ids: String(ids) }, `reserve ids burnt: ${why}`);
            },
            onWindow: (name, ids, outcome) => {
              this.metrics.reserveWindows.inc({ outcome });
              log.debug({ sequence: name, ids: String(ids), outcome }, "reserve window");
            },
            onPoolError: (name, e) => {
              this.metrics.reserveErrors.inc();
              log.warn(
                { sequence: name, err: String(e) },
                "reserve pool call failed: using the ledger directly",
              );
            },
          },
        });
      }
    }
    const catalog = this.redis ? new RedisPlane(this.redis) : undefined;
    this.dispenser = new Dispenser({
      ...(this.reserve ? { reserve: this.reserve } : {}),
      ...(catalog ? { mirror: (name: string) => catalog.readDefinition(name) } : {}),
      ...(catalog
        ? {
            dcGuard: (name: string, dc: number) => catalog.readGuard(name, dc),
            onGuardConflict: (name: string, message: string) => {
              this.metrics.grantsRefused.inc({ reason: "identity" });
              log.error({ sequence: name }, message);
            },
          }
        : {}),
      ledger,
      dc: o.dc,
      ...(o.edgeId !== undefined ? { edgeId: o.edgeId } : {}),
      ...(o.drawTimeoutMs !== undefined ? { drawTimeoutMs: o.drawTimeoutMs } : {}),
      ...(o.permutationSecret !== undefined ? { permutationSecret: o.permutationSecret } : {}),
      ...(o.dataDir !== undefined ? { journal: new EdgeJournal(o.dataDir) } : {}),
      onWaited: (seconds) => this.metrics.issueWaitSeconds.observe(seconds),
      onLease: (name, seconds, g) => {
        if ("code" in g) {
          this.metrics.leaseErrors.inc({ code: g.code });
          log.warn({ sequence: name, code: g.code, err: g.message }, "lease failed");
        } else {
          this.metrics.leaseSeconds.observe(seconds);
          log.debug({ sequence: name, start: String(g.start), end: String(g.end) }, "leased");
        }
      },
      onGrantRefused: (name, reason, message) => {
        this.metrics.grantsRefused.inc({ reason });
        log.error({ sequence: name, reason }, message);
      },
      onKeyMismatch: (name, message) => {
        this.metrics.keyMismatches.inc({ sequence: this.metrics.sequenceLabel(name) });
        log.error({ sequence: name }, message);
      },
    });
    this.metrics = new EdgeMetrics(
      this.registry,
      () => this.dispenser.samples(),
      () => this.reserve?.samples() ?? [],
      o.metricsMaxSequences,
    );
    collectDefaultMetrics({ register: this.registry, prefix: "dispenser_edge_" });
  }

  async start(): Promise<void> {
    const o = this.o;
    if (this.redis) {
      this.reporter = new PlaneReporter({
        plane: new RedisPlane(this.redis),
        dispenser: this.dispenser,
        logger: o.logger,
      });
      this.redis
        .connect()
        .catch((e: unknown) => o.logger.warn({ err: String(e) }, "redis plane not reachable yet"));
      this.reporter.start();
    } else {
      o.logger.info(
        "no Redis plane configured: no DC reserve (cut off from the ledger, this edge serves only what it holds) and no DC-wide INFO counts",
      );
    }
    if (o.grpcListen !== undefined) {
      // The ledger's gRPC server on node:http2: the same wire as grpc-js's, less CPU per call.
      const grpc = (this.grpc = new GrpcServer({
        maxReceiveBytes: MAX_GRPC_MESSAGE_BYTES,
        maxSendBytes: MAX_GRPC_MESSAGE_BYTES,
        ...(o.tls ? { tls: o.tls, requireClientCert: o.tls.ca !== undefined } : {}),
      }));
      grpc.addService(
        DispenserService,
        createDispenserService(
          this.dispenser,
          this.metrics,
          // --password alone is RESP's (requirepass): the SDK and the CLI send no token yet.
          o.usersFile !== undefined ? this.users : undefined,
          this.throttle,
        ),
      );
      const { host, port } = splitHostPort(o.grpcListen);
      this.grpcPort = await grpc.listen(host, port);
    }
    const respOn = (listen: string, tls: ServerTls | undefined): RespServer => {
      const { host, port } = splitHostPort(listen);
      return new RespServer(this.dispenser, {
        host,
        port,
        ...(tls ? { tls } : {}),
        users: this.users,
        throttle: this.throttle,
        ...(o.respIdleTimeoutMs !== undefined ? { idleTimeoutMs: o.respIdleTimeoutMs } : {}),
        metrics: this.metrics,
        ...(this.reporter ? { dcStats: (name: string) => this.reporter!.dcStats(name) } : {}),
        logger: o.logger,
      });
    };
    if (o.respListen !== undefined) {
      this.resp = respOn(o.respListen, undefined);
      this.respPort = await this.resp.listen();
    }
    if (o.respTlsListen !== undefined) {
      if (!o.tls) throw new Error("respTlsListen needs tls");
      this.respTls = respOn(o.respTlsListen, o.tls);
      this.respTlsPort = await this.respTls.listen();
    }
    if (o.metricsListen !== undefined) {
      const { host, port } = splitHostPort(o.metricsListen);
      const reg = this.registry;
      const m = await serveMetrics(host, port, () => reg.metrics(), reg.contentType);
      this.http = m.server;
      this.metricsPort = m.port;
    }
    for (const w of exposureWarnings(o)) o.logger.warn(w);
    o.logger.info(
      {
        dc: o.dc,
        edge: this.dispenser.edgeId,
        grpc: this.grpcPort,
        resp: this.respPort,
        respTls: this.respTlsPort,
        grpcTls: o.tls !== undefined,
        metrics: this.metricsPort,
      },
      "edge started",
    );
  }

  /** Stop accepting, finish in-flight requests, return unused tails to the ledger, close. */
  async stop(): Promise<ReturnReport[]> {
    const log = this.o.logger;
    const grpc = this.grpc;
    const closing = [
      grpc ? grpc.shutdown(SHUTDOWN_GRACE_MS) : Promise.resolve(),
      this.resp ? this.resp.close() : Promise.resolve(),
      this.respTls ? this.respTls.close() : Promise.resolve(),
    ];
    await Promise.all(closing);
    this.reserve?.close();
    const reports = await this.dispenser.close();
    await this.reporter?.stop().catch(() => undefined);
    this.redis?.disconnect();
    for (const r of reports) {
      log.info(
        {
          sequence: r.name,
          returned: String(r.returned),
          accepted: String(r.accepted),
          wasted: String(r.wasted),
          err: r.error,
        },
        "segment tails handed back",
      );
    }
    const http = this.http;
    await new Promise<void>((resolve) => (http ? http.close(() => resolve()) : resolve()));
    return reports;
  }
}
