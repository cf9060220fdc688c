// One /metrics for the dev cluster: the edge's registry, then the ledger nodes' registries merged.
// Ledger families (dispenser_ledger_*) carry a `node` label, so their samples are concatenated
// under one HELP/TYPE header; the process-wide families every registry collects (nodejs_*,
// process_*) describe this one process and are taken from the first ledger registry only.
import type { Server } from "node:http";
import { serveMetrics } from "@dispenser/plumbing";
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
export function serveDevMetrics(
  host: string,
  port: number,
  edge: Registry,
  ledgers: readonly Registry[],
): Promise<{ server: Server; port: number }> {
  const body = async (): Promise<string> => {
    const [e, ...l] = await Promise.all([edge.metrics(), ...ledgers.map((r) => r.metrics())]);
    return `${e}\n${mergeLedgerText(l)}`;
  };
  return serveMetrics(host, port, body, edge.contentType);
}
