import type { LedgerServer } from "@dispenser/proto";
import { LedgerClient as PbLedgerClient, leaderOf } from "@dispenser/proto";
import type { handleUnaryCall, Metadata as MetadataType, ServiceError } from "@grpc/grpc-js";
import { credentials, Metadata, status } from "@grpc/grpc-js";
import { expectRole } from "@dispenser/plumbing";

type Methods = {
  [K in keyof LedgerServer]: LedgerServer[K] extends handleUnaryCall<infer Req, infer Res>
    ? { req: Req; res: Res }
    : never;
};
export type LedgerMethod = keyof Methods;

export interface LedgerClientOptions {
  /** Ledger node addresses (host:port); any of them will do. */
  endpoints: readonly string[];
  /** Deadline of one attempt. Default 3,000 ms. */
  attemptTimeoutMs?: number;
  /** Give up after this long across all attempts. Default 15,000 ms. */
  totalTimeoutMs?: number;
  /**
   * TLS to the ledger: the cluster's CA, and this client's certificate and key (its identity);
   * the node's certificate must also name the address dialed (IP or DNS SAN). Unset: plaintext.
   */
  tls?: { readonly ca: Buffer; readonly cert?: Buffer; readonly key?: Buffer };
}

/** A server's certificate must name a ledger member (dispenser://<cluster>/ledger/<id>). */
const isLedger = expectRole("ledger");

/** A ping every this long, on a connection with or without calls. */
const KEEPALIVE_MS = 2_000;
/** A ping not answered within this long drops the connection. */
const KEEPALIVE_TIMEOUT_MS = 2_000;

/** Whether an error means "try another node or again later" (the call may or may not have run). */
function retryable(e: ServiceError): boolean {
  return e.code === status.UNAVAILABLE || e.code === status.DEADLINE_EXCEEDED || e.code === status.CANCELLED;
}

/**
 * A Ledger client that finds the leader: it follows "not leader, try X" answers, and moves to the
 * next endpoint when a node is unreachable. Writes carry request ids, so a retry after an
 * ambiguous failure returns the first answer instead of granting twice.
 */
export class LedgerClient {
  private readonly clients = new Map<string, PbLedgerClient>();
  private current: string;
  private readonly attemptMs: number;
  private readonly totalMs: number;

  constructor(private readonly o: LedgerClientOptions) {
    if (o.endpoints.length === 0) throw new Error("LedgerClient needs at least one endpoint");
    this.current = o.endpoints[0]!;
    this.attemptMs = o.attemptTimeoutMs ?? 3_000;
    this.totalMs = o.totalTimeoutMs ?? 15_000;
  }

  private client(addr: string): PbLedgerClient {
    let c = this.clients.get(addr);
    if (!c) {
      const tls = this.o.tls;
      // The CA signs edges and admins too: the server must prove it is a ledger member.
      const creds = tls
        ? credentials.createSsl(tls.ca, tls.key ?? null, tls.cert ?? null, { checkServerIdentity: isLedger })
        : credentials.createInsecure();
      c = new PbLedgerClient(addr, creds, {
        "grpc.enable_channelz": 0, // per-call bookkeeping for a debugging service nobody reads
        "grpc.initial_reconnect_backoff_ms": 100,
        "grpc.max_reconnect_backoff_ms": 1_000,
        // A connection that went silent (a partition, a stopped node) is dropped within a few
        // seconds and the next attempt dials afresh, instead of every attempt waiting out its
        // deadline on it. Our servers answer pings themselves and set no ping policy.
        "grpc.keepalive_time_ms": KEEPALIVE_MS,
        "grpc.keepalive_timeout_ms": KEEPALIVE_TIMEOUT_MS,
        "grpc.keepalive_permit_without_calls": 1,
      });
      this.clients.set(addr, c);
    }
    return c;
  }

  private once<M extends LedgerMethod>(
    addr: string,
    method: M,
    req: Methods[M]["req"],
  ): Promise<Methods[M]["res"]> {
    const c = this.client(addr) as unknown as Record<
      string,
      (
        req: unknown,
        md: MetadataType,
        opts: { deadline: number },
        cb: (err: ServiceError | null, res: unknown) => void,
      ) => void
    >;
    return new Promise((resolve, reject) => {
      const f = c[method as string]!;
      f.call(
        c,
        req,
        new Metadata(),
        { deadline: Date.now() + this.attemptMs },
        (err: ServiceError | null, res: unknown) => {
          if (err) reject(err);
          else resolve(res);
        },
      );
    });
  }

  async call<M extends LedgerMethod>(method: M, req: Methods[M]["req"]): Promise<Methods[M]["res"]> {
    const until = Date.now() + this.totalMs;
    let backoffMs = 20;
    let next = this.o.endpoints.indexOf(this.current);
    for (;;) {
      try {
        return await this.once(this.current, method, req);
      } catch (e) {
        const err = e as ServiceError;
        const leader = leaderOf(err);
        if (Date.now() > until) throw err;
        if (leader && leader.address !== this.current) {
          this.current = leader.address;
          continue;
        }
        if (!retryable(err) && !leader) throw err;
        next = (next + 1) % this.o.endpoints.length;
        this.current = this.o.endpoints[next]!;
        // Short waits: during an election the next leader is usually there within a few
        // heartbeats, and every 100 ms of backoff is 100 ms of failover seen by callers.
        await new Promise((r) => setTimeout(r, backoffMs));
        backoffMs = Math.min(backoffMs * 2, 100);
      }
    }
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
