import type { AddressInfo, Server, Socket } from "node:net";
import { connect, createServer } from "node:net";

/** What a proxied link does with traffic. */
export type LinkMode = "pass" | "blackhole" | "reset";

interface Pair {
  client: Socket;
  /** Connected once the link passes: in a partition, a new connection reaches nobody. */
  upstream: Socket | undefined;
}

/**
 * A TCP proxy on loopback between two processes, to cut links without touching the processes:
 * `blackhole` is a silent partition: connections stay open and nothing moves, bytes already sent
 * wait (as TCP would retransmit them) and arrive in order once the link passes again, so a cut
 * never corrupts a stream; calls hang until their deadline or a keepalive gives up. `reset` closes
 * every connection and refuses new ones (a fast failure).
 */
export class TcpProxy {
  private server: Server | undefined;
  private readonly pairs = new Set<Pair>();
  private mode: LinkMode = "pass";
  port = 0;

  constructor(
    private readonly targetPort: number,
    private readonly listenPort = 0,
  ) {}

  async start(): Promise<number> {
    this.server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve) => this.server!.listen(this.listenPort, "127.0.0.1", resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this.port;
  }

  private accept(client: Socket): void {
    if (this.mode === "reset") {
      client.destroy();
      return;
    }
    const pair: Pair = { client, upstream: undefined };
    this.pairs.add(pair);
    client.on("error", () => this.close(pair)).on("close", () => this.close(pair));
    if (this.mode === "pass") this.connect(pair);
    else client.pause();
  }

  private connect(pair: Pair): void {
    const { client } = pair;
    const upstream = (pair.upstream = connect(this.targetPort, "127.0.0.1"));
    upstream.on("error", () => this.close(pair)).on("close", () => this.close(pair));
    // Paused sockets emit nothing: a held byte is never dropped, only delayed.
    client.on("data", (d) => upstream.write(d));
    upstream.on("data", (d) => client.write(d));
    client.resume();
  }

  private close(pair: Pair): void {
    pair.client.destroy();
    pair.upstream?.destroy();
    this.pairs.delete(pair);
  }

  setMode(mode: LinkMode): void {
    this.mode = mode;
    for (const p of [...this.pairs]) {
      if (mode === "reset") this.close(p);
      else if (mode === "blackhole") {
        p.client.pause();
        p.upstream?.pause();
      } else if (!p.upstream) this.connect(p);
      else {
        p.client.resume();
        p.upstream.resume();
      }
    }
  }

  async stop(): Promise<void> {
    this.setMode("reset");
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
