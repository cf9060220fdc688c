// One /metrics for the dev cluster: the edge's registry, then the ledger nodes' registries merged.
// Ledger families (dispenser_ledger_*) carry a `node` label, so their samples are concatenated
// under one HELP/TYPE header; the process-wide families every registry collects (nodejs_*,
// process_*) describe this one process and are taken from the first ledger registry only.
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

interface Family {
  header: string[];
  samples: string[];
}

function families(text: string): Map<string, Family> {
  const out = new Map<string, Family>();
  let cur: Family | undefined;
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const help = /^# HELP (\S+)/.exec(line);
    if (help) {
      cur = { header: [line], samples: [] };
      out.set(help[1]!, cur);
    } else if (line.startsWith("#")) cur?.header.push(line);
    else cur?.samples.push(line);
  }
  return out;
}

/** Prometheus text of several registries of ledger nodes living in one process. */
export function mergeLedgerText(texts: readonly string[]): string {
  const merged = new Map<string, Family>();
  for (const text of texts) {
    for (const [name, fam] of families(text)) {
      const have = merged.get(name);
      if (!have) merged.set(name, { header: fam.header, samples: [...fam.samples] });
      else if (name.startsWith("dispenser_ledger_")) have.samples.push(...fam.samples);
    }
  }
  return [...merged.values()].map((f) => [...f.header, ...f.samples].join("\n")).join("\n\n") + "\n";
}

/** Serves GET /metrics: the edge registry followed by the merged ledger registries. */
export async function serveMetrics(
  host: string,
  port: number,
  edge: Registry,
  ledgers: readonly Registry[],
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    if (req.url !== "/metrics") {
      res.writeHead(404).end("not found: try /metrics\n");
      return;
    }
    Promise.all([edge.metrics(), ...ledgers.map((r) => r.metrics())]).then(
      ([e, ...l]) =>
        res.writeHead(200, { "content-type": edge.contentType }).end(`${e}\n${mergeLedgerText(l)}`),
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
