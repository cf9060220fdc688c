import type { Server as HttpServer } from "node:http";
import { randomInt } from "node:crypto";
import { LedgerService as LedgerServiceDef, PeerService } from "@dispenser/proto";
import type { NodeId } from "@dispenser/raft";
import { GrpcServer, identityUri, onlyRole, serveMetrics, splitHostPort } from "@dispenser/plumbing";
import type { Identity, IdentityRole, TlsMaterial } from "@dispenser/plumbing";
import type { Logger } from "pino";
import { collectDefaultMetrics, Registry } from "prom-client";
import type { AppResult } from "./ledger-app.js";
import { LedgerApp } from "./ledger-app.js";
import { LedgerMetrics } from "./metrics.js";
import { RaftServer } from "./raft-server/raft-server.js";
import { LedgerService } from "./service/ledger-service.js";
import { LevelStorage, StorageCorruptError } from "./storage/level-storage.js";
import { guarded } from "./service/access.js";
import { MAX_PEER_MESSAGE_BYTES, PeerTransport } from "./transport/peer-transport.js";

export interface LedgerNodeOptions {
  id: NodeId;
  clusterId: string;
  dataDir: string;
  /** host:port of the Ledger service, for clients (and for peers too, without `peerListen`). */
  listen: string;
  /** Every initial member, this node included: id → host:port of its Ledger service. */
  peers: ReadonlyMap<NodeId, string>;
  /**
   * host:port of the Peer service, on a listener of its own (clients cannot reach it, and with
   * TLS only members' certificates get past its handshake). Unset: the Peer service shares
   * `listen`.
   */
  peerListen?: string;
  /** Every initial member's Peer service address (default: its entry of `peers`). */
  peerAddresses?: ReadonlyMap<NodeId, string>;
  /** Create the cluster: write the initial configuration (all of `peers` as voters) if the data directory is empty. */
  bootstrap: boolean;
  /** Join an existing cluster as a new member (after `AddMember` on the leader), starting empty. */
  join: boolean;
  /** host:port for Prometheus metrics; undefined for none. */
  metricsListen: string | undefined;
  /** Sequences with /metrics series of their own; the rest are summed as "(other)". Default 1,000. */
  metricsMaxSequences?: number;
  tickMs: number;
  electionTicks: number;
  snapshotEntries: number;
  logger: Logger;
  /**
   * Mutual TLS on the node's port: members prove who they are with certificates of one CA (see
   * @dispenser/plumbing tls.ts), and peer messages are accepted only from the member that sends
   * them. Unset: plaintext, where anyone who reaches the port can speak as a member.
   */
  tls?: TlsMaterial;
  /** Bytes per part of a Backup answer; default 16 MiB (tests make it small). */
  backupPartBytes?: number;
}

export class StartupError extends Error {}

/** How long a stopping node lets calls in flight finish before closing the remaining streams. */
const SHUTDOWN_GRACE_MS = 500;
/** Largest request of the public Ledger service (the largest is a sequence definition). */
const MAX_CLIENT_MESSAGE_BYTES = 4 * 1024 * 1024;

/** host:port → its parts; StartupError when it is not one. */
/** One ledger process: storage, Raft, the peer transport, the public service and metrics. */
export class LedgerNode {
  private storage: LevelStorage | undefined;
  private raft: RaftServer<AppResult> | undefined;
  private transport: PeerTransport | undefined;
  private grpc: GrpcServer | undefined;
  /** The Peer service's own listener (with `peerListen`). */
  private peerGrpc: GrpcServer | undefined;
  private http: HttpServer | undefined;
  readonly registry = new Registry();
  private readonly metrics: LedgerMetrics;
  /** The on-disk log failed its checks: no Raft, no service, metrics only. */
  quarantined = false;

  constructor(private readonly o: LedgerNodeOptions) {
    this.metrics = new LedgerMetrics(this.registry, o.id, o.metricsMaxSequences);
    collectDefaultMetrics({ register: this.registry });
  }

  async start(): Promise<void> {
    const o = this.o;
    const log = o.logger;
    if (!o.peers.has(o.id) && !o.join) throw new StartupError(`--peers must list this node (${o.id})`);
    try {
      this.storage = await LevelStorage.open(o.dataDir, { clusterId: o.clusterId, nodeId: o.id });
    } catch (e) {
      if (e instanceof StorageCorruptError) {
        // Stay up without Raft or the service, so the metric (and an alert on it) shows why.
        this.metrics.storageCorrupt.set({ node: String(o.id) }, 1);
        log.fatal(
          { err: e.message, dataDir: o.dataDir },
          "refusing to vote or serve: the on-disk log is corrupt; restore this member from its peers (remove it and add it back under a new id)",
        );
        await this.startMetrics();
        this.quarantined = true;
        return;
      }
      throw e;
    }
    const storage = this.storage;
    if (storage.wasEmpty) {
      if (o.bootstrap && !o.join) {
        const voters = [...o.peers.keys()].sort((a, b) => a - b);
        await storage.bootstrap(
          { meta: { index: 1, term: 1, confState: { voters, learners: [] } }, data: new Uint8Array() },
          { term: 1, vote: 0, commit: 1 },
        );
        log.info({ voters }, "bootstrapped a new cluster");
      } else if (!o.join) {
        await storage.close();
        throw new StartupError(
          `data directory ${o.dataDir} is empty: pass --bootstrap to create a new cluster with --peers as its members, ` +
            `or --join to join an existing cluster as a new member (add it first with AddMember). ` +
            `A member that lost its data must rejoin under a new id: its old id still holds votes it no longer remembers.`,
        );
      } else {
        log.info("starting empty, waiting for the leader to send the log (joined as a new member)");
      }
    }

    // Where members dial each other, by id: the initial members' from the command line, later
    // ones' as their address entries commit.
    const peerAddresses = new Map(o.peerAddresses ?? o.peers);
    this.transport = new PeerTransport({
      clusterId: o.clusterId,
      id: o.id,
      incarnation: storage.incarnation,
      book: storage,
      peers: peerAddresses,
      logger: log,
      metrics: this.metrics,
      ...(o.tls ? { tls: o.tls } : {}),
      // Empty, a node hears any member: the leader that will send it the state may be one it
      // has no address for yet. Once it holds state, it knows every member from the book.
      hearUnknownMembers: () => storage.lastIndex() === 0,
    });
    const transport = this.transport;
    const fromFlags = new Set(peerAddresses.keys());
    const app = new LedgerApp(o.id, this.metrics, (id, a) => {
      // Members added at run time become reachable once their addresses commit.
      if (!fromFlags.has(id) && id !== o.id && peerAddresses.get(id) !== a.peer) {
        peerAddresses.set(id, a.peer);
        transport.addPeer(id, a.peer);
      }
    });
    this.raft = new RaftServer<AppResult>({
      id: o.id,
      storage,
      app,
      transport: {
        // A node that started empty must not vote before it holds the cluster's state: an empty
        // log would grant any candidate, and it may still be counted under an old identity.
        send: (msgs) =>
          transport.send(
            storage.lastIndex() === 0
              ? msgs.filter((m) => m.type !== "VoteResp" && m.type !== "PreVoteResp")
              : msgs,
          ),
      },
      logger: log,
      metrics: this.metrics,
      rand: { intn: (n) => randomInt(n) },
      tickMs: o.tickMs,
      electionTicks: o.electionTicks,
      snapshotEntries: o.snapshotEntries,
    });
    const raft = this.raft;
    transport.attach(raft);

    const service = new LedgerService({
      clusterId: o.clusterId,
      nodeId: o.id,
      raft,
      app: () => app,
      addressOf: (id) => o.peers.get(id) ?? app.addresses.get(id)?.address ?? "",
      peerAddressOf: (id) => peerAddresses.get(id) ?? app.addresses.get(id)?.peer ?? "",
      peerPortsApart: o.peerListen !== undefined && o.peerListen !== o.listen,
      ...(o.backupPartBytes === undefined ? {} : { backupPartBytes: o.backupPartBytes }),
    });
    const server = (admit?: IdentityRole): GrpcServer =>
      new GrpcServer({
        maxReceiveBytes: MAX_PEER_MESSAGE_BYTES,
        maxSendBytes: MAX_PEER_MESSAGE_BYTES,
        // Every call here needs an identity: a client without a certificate is not read at all.
        ...(o.tls
          ? {
              tls: o.tls,
              requireClientCert: true,
              ...(admit ? { admit: this.admitted(onlyRole(o.clusterId, admit)) } : {}),
            }
          : {}),
      });
    const apart = o.peerListen !== undefined && o.peerListen !== o.listen;
    if (!o.tls)
      log.warn(
        { listen: o.listen, peerListen: o.peerListen },
        "plaintext: no --tls-ca/--tls-cert/--tls-key, so anyone who reaches the peer port can speak as a member",
      );
    this.grpc = server();
    // With TLS, each call's certificate must name a role the method allows (service/access.ts).
    const handlers = o.tls ? guarded(service.handlers(), o.clusterId) : service.handlers();
    this.grpc.addService(LedgerServiceDef, handlers, MAX_CLIENT_MESSAGE_BYTES);
    if (apart) {
      // Only members' certificates get past this port's handshake: a stranger or a client of the
      // cluster sends nothing a Peer handler reads.
      this.peerGrpc = server("ledger");
      this.peerGrpc.addService(PeerService, transport.handlers());
      const p = splitHostPort(o.peerListen!);
      await this.peerGrpc.listen(p.host, p.port);
    } else {
      this.grpc.addService(PeerService, transport.handlers());
    }
    const { host, port } = splitHostPort(o.listen);
    await this.grpc.listen(host, port);
    raft.start();

    await this.startMetrics();
    log.info(
      {
        listen: o.listen,
        peerListen: apart ? o.peerListen : o.listen,
        metrics: o.metricsListen,
        lastIndex: storage.lastIndex(),
      },
      "ledger node started",
    );
  }

  /** `admit`, counting each connection it turns away as an unauthenticated peer message, and logging some. */
  private admitted(
    admit: (id: Identity | undefined) => boolean,
  ): (id: Identity | undefined, remote: string | undefined) => boolean {
    let refused = 0;
    return (id, remote) => {
      const ok = admit(id);
      if (ok) return true;
      this.metrics.messagesRefused.inc({ node: String(this.o.id), kind: "unauthenticated" });
      if (refused++ % 100 === 0)
        this.o.logger.warn(
          { remote, identity: id ? identityUri(id) : "none" },
          "peer port: a connection without a member's certificate was closed",
        );
      return false;
    };
  }

  private async startMetrics(): Promise<void> {
    if (!this.o.metricsListen) return;
    const m = splitHostPort(this.o.metricsListen);
    const reg = this.registry;
    this.http = (await serveMetrics(m.host, m.port, () => reg.metrics(), reg.contentType)).server;
  }

  async stop(): Promise<void> {
    // Peers' streams to us never end on their own: calls in flight get a moment, then the rest
    // are cut.
    await Promise.all([this.grpc?.shutdown(SHUTDOWN_GRACE_MS), this.peerGrpc?.shutdown(SHUTDOWN_GRACE_MS)]);
    await this.raft?.stop();
    this.transport?.close();
    await new Promise<void>((resolve) => (this.http ? this.http.close(() => resolve()) : resolve()));
    await this.storage?.close();
  }
}
