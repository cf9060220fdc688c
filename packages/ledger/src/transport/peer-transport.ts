import type { Entry, Message, NodeId } from "@dispenser/raft";
import { MessageType } from "@dispenser/raft";
import type { PeerServer, SnapshotChunk } from "@dispenser/proto";
import { MAX_SNAPSHOT_CHUNK_BYTES, MessageBatch, PeerClient, PeerService } from "@dispenser/proto";
import type { Metadata as MetadataType, ServiceError } from "@grpc/grpc-js";
import { credentials, Metadata, status } from "@grpc/grpc-js";
import type { Identity, TlsMaterial } from "@dispenser/plumbing";
import { callerOf, expectIdentity, identityUri } from "@dispenser/plumbing";
import type { Logger } from "pino";
import type { LedgerMetrics } from "../metrics.js";
import type { Transport } from "../raft-server/raft-server.js";
import { fromPbMessage, toPbMessage, WireError } from "./convert.js";
import type { H2Stream } from "./h2-stream.js";
import type { TransportRefusalKind } from "./refusals.js";
import { H2Channel } from "./h2-stream.js";

/** What the transport needs of the local Raft node. */
export interface PeerSink {
  receive(messages: readonly Message[]): void;
  reportUnreachable(id: NodeId): void;
  reportSnapshot(id: NodeId, ok: boolean): void;
}

/** Remembers the incarnation of each peer's data directory (durably). */
export interface IncarnationBook {
  peerIncarnation(id: NodeId): string | undefined;
  recordPeerIncarnation(id: NodeId, incarnation: string): Promise<void>;
}

/** gRPC metadata key carrying the sender's data-directory incarnation. */
export const INCARNATION_METADATA_KEY = "dispenser-incarnation";
/** gRPC metadata key carrying the incarnation the sender knows for the receiver ("" if none yet). */
export const TO_INCARNATION_METADATA_KEY = "dispenser-to-incarnation";

export interface PeerTransportOptions {
  clusterId: string;
  id: NodeId;
  /** This node's data-directory incarnation, sent with every message. */
  incarnation: string;
  /** Where peers' incarnations are remembered. */
  book: IncarnationBook;
  /** Peer id → host:port. */
  peers: ReadonlyMap<NodeId, string>;
  logger: Logger;
  metrics: LedgerMetrics;
  /** Deadline of one snapshot stream. Default 60,000 ms. */
  snapshotTimeoutMs?: number;
  /** Most messages queued per peer; beyond, the oldest are dropped (Raft resends). Default 4,096. */
  maxQueuedMessages?: number;
  /** Largest snapshot accepted from a peer. Default 1 GiB. */
  maxSnapshotBytes?: number;
  /**
   * Mutual TLS between members: we dial with our certificate and expect the peer's to name it
   * (dispenser://<cluster>/ledger/<id>), and accept messages only from a connection whose
   * certificate names the member each message claims to come from. Unset: plaintext, and a
   * sender is whoever it says it is (the dev mode).
   */
  tls?: TlsMaterial;
  /**
   * Whether to hear members this node has no address for yet. A node that starts empty to join
   * learns the members from the leader's snapshot; until then the leader may be one its command
   * line does not name (a member added at run time). Default: never.
   */
  hearUnknownMembers?: () => boolean;
}

/** Forwarded requests keep their original sender (a follower forwards a read towards the leader). */
const FORWARDED: ReadonlySet<MessageType> = new Set([MessageType.ReadIndex, MessageType.TransferLeader]);

interface PeerRefusal {
  readonly code: status;
  readonly details: string;
  readonly kind?: TransportRefusalKind;
}

/** Largest gRPC message between peers: a batch is cut well below it. */
export const MAX_PEER_MESSAGE_BYTES = 64 * 1024 * 1024;
const BATCH_BYTES_TARGET = 4 * 1024 * 1024;

class PeerLink {
  queue: Message[] = [];
  /** The long-lived stream of batches to this peer, opened on first use and after a failure. */
  stream: H2Stream | undefined;
  /** The stream's buffer is full: wait for it to drain (messages queue, the oldest dropped). */
  blocked = false;
  snapshotInFlight = false;
  constructor(
    readonly id: NodeId,
    /** Snapshots (rare, large, chunked) go through grpc-js. */
    readonly client: PeerClient,
    /** Batches go over this link's own HTTP/2 connection (see H2Channel). */
    readonly channel: H2Channel,
  ) {}
}

/**
 * Merge runs of contiguous appends. A leader sends one append per proposal (and an empty one per
 * commit), so a busy Ready holds dozens of appends to each peer, each of which the peer would step
 * and answer on its own. An append of entries (i, j] followed by one of (j, k] in the same term is
 * exactly what one append of (i, k] would have said, with the later commit index; the leader's
 * window accounts for both, and the single answer (ack of k) frees both. Nothing else is merged
 * and the order of the rest is kept.
 */
export function coalesceAppends(batch: Message[]): Message[] {
  if (batch.length < 2) return batch;
  const out: Message[] = [];
  // The merged append at the end of `out`: a copy of its first message, grown in place (a run
  // may be 64 appends long; copying it per merge made the merging quadratic).
  let merged: { -readonly [K in keyof Message]: Message[K] } | undefined;
  let entries: Entry[] = [];
  for (const m of batch) {
    const prev = out[out.length - 1];
    const prevEntries = merged ? entries : prev?.entries;
    if (
      prev !== undefined &&
      prevEntries !== undefined &&
      m.type === MessageType.App &&
      prev.type === MessageType.App &&
      m.term === prev.term &&
      m.from === prev.from &&
      m.to === prev.to &&
      m.index === prev.index + prevEntries.length &&
      m.logTerm === (prevEntries.at(-1)?.term ?? prev.logTerm) &&
      m.commit >= prev.commit
    ) {
      if (!merged) {
        entries = [...prev.entries];
        merged = { ...prev, entries };
        out[out.length - 1] = merged;
      }
      for (const e of m.entries) entries.push(e);
      merged.commit = m.commit;
    } else {
      out.push(m);
      merged = undefined;
    }
  }
  return out;
}

/**
 * Raft messages between ledger nodes over gRPC. Per peer, one long-lived stream of batches;
 * while it is backed up, messages queue (bounded, the oldest dropped: Raft resends), so a slow
 * peer gets bigger batches instead of more writes. Snapshots go over their own stream in chunks.
 * A failed stream reports the peer unreachable to Raft, which drops back to probing it, and is
 * reopened on the next send.
 */
export class PeerTransport implements Transport {
  private readonly links = new Map<NodeId, PeerLink>();
  private sink: PeerSink | undefined;
  private readonly snapshotTimeoutMs: number;
  private readonly maxQueued: number;
  private readonly maxSnapshotBytes: number;
  /** Refusals so far, to log the first and then every hundredth. */
  private amnesiaLogged = 0;
  private refusalsLogged = 0;

  constructor(private readonly o: PeerTransportOptions) {
    this.snapshotTimeoutMs = o.snapshotTimeoutMs ?? 60_000;
    this.maxQueued = o.maxQueuedMessages ?? 4_096;
    this.maxSnapshotBytes = o.maxSnapshotBytes ?? 1024 * 1024 * 1024;
    for (const [id, addr] of o.peers) if (id !== o.id) this.addPeer(id, addr);
  }

  attach(sink: PeerSink): void {
    this.sink = sink;
  }

  addPeer(id: NodeId, address: string): void {
    this.removePeer(id);
    const tls = this.o.tls;
    const checkServerIdentity = expectIdentity(this.memberIdentity(id));
    const creds = tls
      ? credentials.createSsl(tls.ca, tls.key, tls.cert, { checkServerIdentity })
      : credentials.createInsecure();
    const client = new PeerClient(address, creds, {
      "grpc.enable_channelz": 0,
      "grpc.max_send_message_length": MAX_PEER_MESSAGE_BYTES,
      "grpc.max_receive_message_length": MAX_PEER_MESSAGE_BYTES,
      "grpc.initial_reconnect_backoff_ms": 100,
      "grpc.max_reconnect_backoff_ms": 1_000,
    });
    const channel = new H2Channel(
      address,
      tls
        ? { ca: tls.ca, cert: tls.cert, key: tls.key, checkServerIdentity, minVersion: "TLSv1.2" }
        : undefined,
    );
    this.links.set(id, new PeerLink(id, client, channel));
  }

  removePeer(id: NodeId): void {
    const l = this.links.get(id);
    if (!l) return;
    l.stream?.cancel();
    l.channel.close();
    l.client.close();
    this.links.delete(id);
  }

  close(): void {
    for (const id of [...this.links.keys()]) this.removePeer(id);
  }

  send(messages: readonly Message[]): void {
    for (const m of messages) {
      const link = this.links.get(m.to);
      if (!link) {
        this.o.metrics.messagesDropped.inc({ node: String(this.o.id) });
        continue;
      }
      if (m.type === MessageType.Snap) {
        this.sendSnapshot(link, m);
        continue;
      }
      link.queue.push(m);
      if (link.queue.length > this.maxQueued) {
        link.queue.shift();
        this.o.metrics.messagesDropped.inc({ node: String(this.o.id) });
      }
    }
    for (const link of this.links.values()) this.flush(link);
  }

  private flush(link: PeerLink): void {
    while (!link.blocked && link.queue.length > 0) {
      let bytes = 0;
      let n = 0;
      while (n < link.queue.length && (n === 0 || bytes < BATCH_BYTES_TARGET)) {
        for (const e of link.queue[n]!.entries) bytes += e.data.byteLength + 32;
        n++;
      }
      const batch = coalesceAppends(link.queue.splice(0, n));
      const stream = this.streamTo(link);
      if (!stream) {
        // Reconnecting is backed off: the peer is unreachable. Raft resends what it still needs.
        this.o.metrics.messagesDropped.inc({ node: String(this.o.id) }, batch.length);
        this.sink?.reportUnreachable(link.id);
        continue;
      }
      const encoded = MessageBatch.encode({
        clusterId: this.o.clusterId,
        from: BigInt(this.o.id),
        to: BigInt(link.id),
        messages: batch.map((m) => toPbMessage(m)),
      }).finish();
      const more = stream.write(encoded);
      this.o.metrics.messagesSent.inc({ node: String(this.o.id) }, batch.length);
      if (!more) {
        // The peer (or the link) is slow: stop writing until the buffer drains, so memory stays
        // bounded by the queue limit rather than by how long the peer stalls.
        link.blocked = true;
        stream.onDrain(() => {
          link.blocked = false;
          if (this.links.get(link.id) === link) this.flush(link);
        });
      }
    }
  }

  private streamTo(link: PeerLink): H2Stream | undefined {
    if (link.stream) return link.stream;
    const stream = link.channel.open(PeerService.stream.path, this.incarnations(link.id), (end) => {
      if (link.stream === stream) {
        link.stream = undefined;
        link.blocked = false;
      }
      if (end.code !== status.OK && end.code !== status.CANCELLED) {
        this.sink?.reportUnreachable(link.id);
        if (end.code === status.FAILED_PRECONDITION && this.amnesiaLogged++ % 100 === 0) {
          this.o.logger.error({ peer: link.id, err: end.details }, "peer refused our messages");
        }
      }
    });
    link.stream = stream;
    return stream;
  }

  private sendSnapshot(link: PeerLink, m: Message): void {
    if (link.snapshotInFlight) return; // Raft asks again if this one fails.
    const snap = m.snapshot!;
    link.snapshotInFlight = true;
    const md = this.metadataFor(link.id);
    const call = link.client.installSnapshot(md, { deadline: Date.now() + this.snapshotTimeoutMs }, (err) => {
      link.snapshotInFlight = false;
      if (err) this.o.logger.warn({ peer: link.id, err: err.message }, "snapshot send failed");
      this.sink?.reportSnapshot(link.id, !err);
    });
    call.write({
      header: {
        clusterId: this.o.clusterId,
        message: toPbMessage(m, false),
        dataSize: BigInt(snap.data.byteLength),
      },
    } satisfies SnapshotChunk);
    // A chunk at a time as the stream drains: a snapshot of hundreds of megabytes is not copied
    // into the stream's buffers all at once.
    let off = 0;
    const pump = (): void => {
      while (off < snap.data.byteLength) {
        const data = snap.data.subarray(off, off + MAX_SNAPSHOT_CHUNK_BYTES);
        off += MAX_SNAPSHOT_CHUNK_BYTES;
        if (!call.write({ data } satisfies SnapshotChunk)) {
          call.once("drain", pump);
          return;
        }
      }
      call.end();
    };
    pump();
  }

  /** What every call to a peer carries: our incarnation and the one we know for the peer. */
  private incarnations(to: NodeId): Record<string, string> {
    return {
      [INCARNATION_METADATA_KEY]: this.o.incarnation,
      [TO_INCARNATION_METADATA_KEY]: this.o.book.peerIncarnation(to) ?? "",
    };
  }

  private metadataFor(to: NodeId): Metadata {
    const md = new Metadata();
    for (const [k, v] of Object.entries(this.incarnations(to))) md.set(k, v);
    return md;
  }

  /**
   * A member whose data directory was wiped comes back with a new incarnation. Its old votes and
   * acknowledgements are forgotten, so it must not take part under its old id: it has to be
   * removed and added back under a new one. Returns the reason to refuse, or undefined.
   */
  private async checkIncarnation(from: NodeId, md: MetadataType): Promise<string | undefined> {
    const got = md.get(INCARNATION_METADATA_KEY)[0];
    if (typeof got !== "string" || got.length === 0) return "missing sender incarnation";
    const mine = md.get(TO_INCARNATION_METADATA_KEY)[0];
    if (typeof mine === "string" && mine !== "" && mine !== this.o.incarnation) {
      // The sender knew an earlier data directory of ours: we lost state it relies on.
      this.o.metrics.amnesiaRefusals.inc({ node: String(this.o.id), peer: this.peerLabel(from) });
      const reason = `node ${this.o.id} came back with a new data directory (incarnation ${this.o.incarnation}, node ${from} knew ${mine}); remove it and add it back under a new id`;
      if (this.amnesiaLogged++ % 100 === 0) this.o.logger.error({ peer: from }, reason);
      return reason;
    }
    const known = this.o.book.peerIncarnation(from);
    if (known === undefined) {
      await this.o.book.recordPeerIncarnation(from, got);
      return undefined;
    }
    if (known === got) return undefined;
    this.o.metrics.amnesiaRefusals.inc({ node: String(this.o.id), peer: this.peerLabel(from) });
    const reason = `node ${from} came back with a new data directory (incarnation ${got}, was ${known}); remove it and add it back under a new id`;
    if (this.amnesiaLogged++ % 100 === 0) this.o.logger.error({ peer: from }, reason);
    return reason;
  }

  /** A sender as a metric label: a member this node knows, or "unknown" (no series per stranger). */
  private peerLabel(from: NodeId): string {
    return this.links.has(from) ? String(from) : "unknown";
  }

  private memberIdentity(id: NodeId): Identity {
    return { cluster: this.o.clusterId, role: "ledger", name: String(id) };
  }

  /**
   * The member a connection proved to be (TLS), or the one it claims to be (plaintext); a refusal
   * when its certificate names no member of this cluster, or another one than `claimed`, or when
   * the sender is no member this node knows of (never added, or not yet committed here): nothing
   * such a sender says reaches the core or the incarnation book.
   */
  private senderOf(caller: Identity | undefined, claimed: bigint): NodeId | PeerRefusal {
    const id = this.provenSender(caller, claimed);
    if (typeof id !== "number" || this.links.has(id) || this.o.hearUnknownMembers?.() === true) return id;
    return {
      code: status.UNAUTHENTICATED,
      details: `node ${id} is not a member node ${this.o.id} knows`,
      kind: "unauthenticated",
    };
  }

  private provenSender(caller: Identity | undefined, claimed: bigint): NodeId | PeerRefusal {
    if (!this.o.tls) {
      if (claimed <= 0n || claimed > BigInt(Number.MAX_SAFE_INTEGER))
        return {
          code: status.INVALID_ARGUMENT,
          details: `sender ${claimed} is not a node id`,
          kind: "malformed",
        };
      return Number(claimed);
    }
    const id =
      caller && caller.role === "ledger" && /^[1-9][0-9]{0,15}$/.test(caller.name) ? Number(caller.name) : 0;
    if (!caller || caller.cluster !== this.o.clusterId || !Number.isSafeInteger(id) || id <= 0) {
      return {
        code: status.UNAUTHENTICATED,
        details: `peer messages need a certificate naming a member of cluster ${this.o.clusterId} (${caller ? identityUri(caller) : "none shown"})`,
        kind: "unauthenticated",
      };
    }
    if (claimed !== BigInt(id))
      return {
        code: status.PERMISSION_DENIED,
        details: `node ${id} sent a batch from node ${claimed}`,
        kind: "sender-mismatch",
      };
    return id;
  }

  private refused(r: PeerRefusal, messages: number): PeerRefusal {
    if (r.kind)
      this.o.metrics.messagesRefused.inc({ node: String(this.o.id), kind: r.kind }, Math.max(1, messages));
    if (r.kind && this.refusalsLogged++ % 100 === 0)
      this.o.logger.warn({ kind: r.kind, err: r.details }, "refused peer messages");
    return r;
  }

  /**
   * Check a batch from a peer and, if it passes, hand its messages to Raft. Returns why it was
   * refused, or undefined. Shared by the unary and the streaming call.
   */
  private async acceptBatch(
    b: MessageBatch,
    md: MetadataType,
    caller: Identity | undefined,
  ): Promise<PeerRefusal | undefined> {
    const n = b.messages.length;
    const from = this.senderOf(caller, b.from);
    if (typeof from !== "number") return this.refused(from, n);
    if (b.clusterId !== this.o.clusterId) {
      return this.refused(
        {
          code: status.PERMISSION_DENIED,
          details: `cluster ${b.clusterId} is not ${this.o.clusterId}`,
          kind: "wrong-cluster",
        },
        n,
      );
    }
    if (b.to !== BigInt(this.o.id)) {
      return this.refused(
        {
          code: status.INVALID_ARGUMENT,
          details: `batch for node ${b.to} reached node ${this.o.id}`,
          kind: "malformed",
        },
        n,
      );
    }
    let msgs: Message[];
    try {
      msgs = b.messages.map((m) => fromPbMessage(m));
    } catch (e) {
      return this.refused(
        {
          code: status.INVALID_ARGUMENT,
          details: e instanceof WireError ? e.message : "malformed message",
          kind: "malformed",
        },
        n,
      );
    }
    if (msgs.some((m) => m.to !== this.o.id || m.type === MessageType.Snap)) {
      return this.refused(
        {
          code: status.INVALID_ARGUMENT,
          details: "batch holds a message for another node or a snapshot",
          kind: "malformed",
        },
        n,
      );
    }
    // Each message's own sender, not only the batch's: the core trusts `from` (votes, acks).
    const forged = msgs.find((m) => m.from !== from && !FORWARDED.has(m.type));
    if (forged) {
      return this.refused(
        {
          code: status.PERMISSION_DENIED,
          details: `node ${from} sent a ${forged.type} from node ${forged.from}`,
          kind: "sender-mismatch",
        },
        n,
      );
    }
    const problem = await this.checkIncarnation(from, md);
    if (problem) return { code: status.FAILED_PRECONDITION, details: problem };
    this.sink?.receive(msgs);
    return undefined;
  }

  /** The server side of the Peer service. */
  handlers(): PeerServer {
    const reject = (code: status, details: string): Partial<ServiceError> => ({ code, details });
    return {
      send: (call, callback) => {
        this.acceptBatch(call.request, call.metadata, callerOf(call)).then(
          (refusal) => (refusal ? callback(reject(refusal.code, refusal.details), null) : callback(null, {})),
          (e: unknown) => callback(reject(status.INTERNAL, String(e)), null),
        );
      },
      stream: (call, callback) => {
        // Batches are handled in order; the first refused one ends the stream with its status.
        let chain = Promise.resolve();
        let failed = false;
        const fail = (code: status, details: string): void => {
          if (failed) return;
          failed = true;
          callback(reject(code, details), null);
        };
        call.on("data", (b: MessageBatch) => {
          chain = chain
            .then(async () => {
              if (failed) return;
              const refusal = await this.acceptBatch(b, call.metadata, callerOf(call));
              if (refusal) fail(refusal.code, refusal.details);
            })
            .catch((e: unknown) => fail(status.INTERNAL, String(e)));
        });
        call.on("error", () => {
          failed = true;
        });
        call.on("end", () => {
          void chain.then(() => {
            if (!failed) callback(null, {});
          });
        });
      },
      installSnapshot: (call, callback) => {
        let header: SnapshotChunk["header"];
        const parts: Uint8Array[] = [];
        let size = 0;
        let failed = false;
        const fail = (code: status, details: string): void => {
          if (failed) return;
          failed = true;
          callback(reject(code, details), null);
        };
        call.on("data", (chunk: SnapshotChunk) => {
          if (failed) return;
          if (chunk.header) {
            if (header) return fail(status.INVALID_ARGUMENT, "second snapshot header");
            const sender = this.senderOf(callerOf(call), chunk.header.message?.from ?? 0n);
            if (typeof sender !== "number") {
              this.refused(sender, 1);
              return fail(sender.code, sender.details);
            }
            if (chunk.header.clusterId !== this.o.clusterId)
              return fail(status.PERMISSION_DENIED, "wrong cluster");
            if (chunk.header.dataSize > BigInt(this.maxSnapshotBytes))
              return fail(status.RESOURCE_EXHAUSTED, "snapshot too large");
            header = chunk.header;
          } else if (chunk.data) {
            if (!header) return fail(status.INVALID_ARGUMENT, "snapshot data before its header");
            size += chunk.data.byteLength;
            if (size > Number(header.dataSize))
              return fail(status.INVALID_ARGUMENT, "snapshot longer than announced");
            parts.push(chunk.data);
          }
        });
        call.on("error", () => {
          failed = true;
        });
        call.on("end", () => {
          if (failed) return;
          if (!header?.message || size !== Number(header.dataSize))
            return fail(status.INVALID_ARGUMENT, "incomplete snapshot");
          const data = new Uint8Array(size);
          let off = 0;
          for (const p of parts) {
            data.set(p, off);
            off += p.byteLength;
          }
          let m: Message;
          try {
            m = fromPbMessage(header.message, data);
          } catch (e) {
            return fail(status.INVALID_ARGUMENT, e instanceof WireError ? e.message : "malformed snapshot");
          }
          if (m.type !== MessageType.Snap || m.to !== this.o.id || !m.snapshot)
            return fail(status.INVALID_ARGUMENT, "not a snapshot for this node");
          const snap = m;
          this.checkIncarnation(m.from, call.metadata).then(
            (problem) => {
              if (problem) return fail(status.FAILED_PRECONDITION, problem);
              this.sink?.receive([snap]);
              callback(null, {});
            },
            (e: unknown) => fail(status.INTERNAL, String(e)),
          );
        });
      },
    };
  }
}
