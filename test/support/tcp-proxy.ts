import type { AddressInfo, Server, Socket } from "node:net";
import { connect, createServer } from "node:net";

/** What a proxied link does with traffic. */
export type LinkMode = "pass" | "blackhole" | "reset";

/**
 * A TCP proxy on loopback between two processes, to cut links without touching the processes:
 * `blackhole` keeps connections open but stops moving bytes (a silent partition: calls hang until
 * their deadline), `reset` closes every connection and refuses new ones (a fast failure).
 */
export class TcpProxy {
  private server: Server | undefined;
  private readonly pairs = new Set<{ client: Socket; upstream: Socket }>();
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
    const upstream = connect(this.targetPort, "127.0.0.1");
    const pair = { client, upstream };
    this.pairs.add(pair);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on("error", close).on("close", close);
    upstream.on("error", close).on("close", close);
    client.on("data", (d) => {
      if (this.mode === "pass") upstream.write(d);
    });
    upstream.on("data", (d) => {
      if (this.mode === "pass") client.write(d);
    });
  }

  setMode(mode: LinkMode): void {
    this.mode = mode;
    if (mode === "reset") {
      for (const p of this.pairs) {
        p.client.destroy();
        p.upstream.destroy();
      }
      this.pairs.clear();
    }
  }

  async stop(): Promise<void> {
    this.setMode("reset");
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
