// How long a ledger node takes to restart after a long history: N leases through a one-node
// ledger on LevelDB (in process, fsync on), then a timed reopen (storage checks, snapshot load,
// log replay). Usage: pnpm bench:restart [leases=1000000]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LedgerApp, LedgerMetrics, LevelStorage, RaftServer, encodeLedgerCommand } from "@dispenser/ledger";
import type { AppResult } from "@dispenser/ledger";
import { normalizeSequenceDef } from "@dispenser/domain";
import { pino } from "pino";
import { Registry } from "prom-client";

const total = Number(process.argv[2] ?? 1_000_000);
const dir = mkdtempSync(join(tmpdir(), "ledger-restart-"));
const rand = { intn: (n: number): number => Math.floor(n / 2) };

async function open(): Promise<{ server: RaftServer<AppResult>; storage: LevelStorage; app: LedgerApp }> {
  const storage = await LevelStorage.open(dir, { clusterId: "bench", nodeId: 1 });
  if (storage.wasEmpty) {
    await storage.bootstrap(
      { meta: { index: 1, term: 1, confState: { voters: [1], learners: [] } }, data: new Uint8Array() },
      { term: 1, vote: 0, commit: 1 },
    );
  }
  const metrics = new LedgerMetrics(new Registry(), 1);
  const app = new LedgerApp(1, metrics);
  const server = new RaftServer<AppResult>({
    id: 1,
    storage,
    app,
    transport: { send: () => {} },
    logger: pino({ level: "silent" }),
    metrics,
    rand,
    tickMs: 10,
  });
  server.start();
  while (!server.isLeader()) await new Promise((r) => setTimeout(r, 10));
  return { server, storage, app };
}

try {
  let { server, storage } = await open();
  const def = normalizeSequenceDef({ name: "orders", type: 3 });
  if (!def.ok) throw new Error("bad definition");
  await server.propose(encodeLedgerCommand({ type: "CreateSequence", def: def.def, createdAtMs: 0 }));
  const t0 = performance.now();
  const concurrency = 1000;
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        const r = await server.propose(
          encodeLedgerCommand({
            type: "LeaseSegment",
            name: "orders",
            dc: 0,
            size: 1000n,
            requestId: `r${i}`,
            kind: "segment",
            returnToken: i.toString(16).padStart(32, "0"),
          }),
        );
        if (!r.ok) throw new Error(r.message);
      }
    }),
  );
  const writeS = (performance.now() - t0) / 1000;
  const last = server.status().lastIndex;
  await server.stop();
  await storage.close();

  const t1 = performance.now();
  ({ server, storage } = await open());
  const restartMs = performance.now() - t1;
  const st = server.status();
  console.log(
    `ledger restart: ${total} leases in ${writeS.toFixed(1)} s (${Math.round(total / writeS)}/s, one node, fsync on); ` +
      `log last index ${last}, snapshot at ${storage.firstIndex() - 1}; restart to leader with state applied: ${restartMs.toFixed(0)} ms (applied ${st.applied})`,
  );
  await server.stop();
  await storage.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
