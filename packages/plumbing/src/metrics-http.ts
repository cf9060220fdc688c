// The /metrics endpoint every process serves: GET /metrics answers the text `body()` produces,
// anything else a 404. Shared by the ledger node, the edge and the dev cluster.
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";

/** Listens on host:port (0 picks one); resolves with the server and its bound port. */
export async function serveMetrics(
  host: string,
  port: number,
  body: () => Promise<string>,
  contentType: string,
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    if (req.url !== "/metrics") {
      res.writeHead(404).end("not found: try /metrics\n");
      return;
    }
    body().then(
      (text) => res.writeHead(200, { "content-type": contentType }).end(text),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return { server, port: (server.address() as AddressInfo).port };
}
