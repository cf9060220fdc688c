import { Redis } from "ioredis";
import { EdgeProcess } from "./edge-process.js";
import { LedgerCluster } from "./ledger-cluster.js";
import type { LinkMode } from "./tcp-proxy.js";
import { RedisCluster } from "./redis-cluster.js";

// Three datacenters on loopback, as real processes: a 3-voter ledger with one voter per DC (node
// dc + 1), per DC its own Redis Cluster (3 masters, 3 replicas) and its edges, and a TCP proxy on
// every link that crosses DCs: between the voters, and from each edge to the other DCs' voters
// (an edge reaches its own DC's voter directly; a leader's redirect names the proxied address).
// `cut(dc)` blackholes every link of one DC to the others; `heal(dc)` restores them.

export interface ThreeDcOptions {
  /** Edges per DC. Default 2. */
  readonly edgesPerDc?: number;
  /** Extra flags for every edge. */
  readonly edgeFlags?: readonly string[];
}

export interface DcEdge {
  readonly dc: number;
  readonly process: EdgeProcess;
  /** A RESP client of the edge. */
  readonly client: Redis;
}

export class ThreeDcs {
  readonly ledger = new LedgerCluster([1, 2, 3]);
  readonly redis: RedisCluster[] = [0, 1, 2].map(() => new RedisCluster({ nodeTimeoutMs: 3_000 }));
  readonly edges: DcEdge[] = [];

  constructor(private readonly o: ThreeDcOptions = {}) {}

  async start(): Promise<void> {
    await Promise.all(this.redis.map((r) => r.start()));
    await this.ledger.init();
    this.ledger.startAll();
    for (let dc = 0; dc < 3; dc++) {
      for (let i = 0; i < (this.o.edgesPerDc ?? 2); i++) {
        const own = dc + 1;
        // Its own voter directly, the others through this voter's proxies (the links of its DC).
        const endpoints = [1, 2, 3].map((id) =>
          id === own ? this.ledger.address(id) : `127.0.0.1:${this.ledger.proxies.get(`${own}>${id}`)!.port}`,
        );
        const nodes = this.redis[dc]!.nodes().map((n) => `${n.host}:${n.port}`);
        const p = new EdgeProcess(endpoints, [
          "--dc",
          String(dc),
          "--redis",
          nodes.join(","),
          "--edge-id",
          `dc${dc}-edge${i}`,
          ...(this.o.edgeFlags ?? []),
        ]);
        await p.init();
        await p.start();
        const client = new Redis({ port: p.respPort, host: "127.0.0.1", lazyConnect: true });
        client.on("error", () => undefined);
        await client.connect();
        this.edges.push({ dc, process: p, client });
      }
    }
  }

  edgesOf(dc: number): DcEdge[] {
    return this.edges.filter((e) => e.dc === dc);
  }

  /** Every link between `dc` and the other DCs: its voter's peer links and its edges' proxied endpoints. */
  setLinks(dc: number, mode: LinkMode): void {
    this.ledger.setLinks(dc + 1, mode);
  }

  /** The whole of `dc` is lost at once: SIGKILL of its voter, its edges and its Redis Cluster. */
  async loseDc(dc: number): Promise<void> {
    const edges = this.edgesOf(dc);
    for (const e of edges) e.client.disconnect();
    await Promise.all([
      this.ledger.kill(dc + 1),
      ...edges.map((e) => e.process.stop("SIGKILL")),
      ...this.redis[dc]!.ports().map((p) => this.redis[dc]!.kill(p, "SIGKILL")),
    ]);
  }

  async stop(): Promise<void> {
    for (const e of this.edges) {
      e.client.disconnect();
      await e.process.stop("SIGKILL").catch(() => undefined);
    }
    await this.ledger.stop();
    await Promise.all(this.redis.map((r) => r.stop()));
  }
}
