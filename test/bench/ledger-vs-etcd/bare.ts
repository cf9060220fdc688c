// The ceiling: a bare grpc-js server answering LeaseSegment at once (no Raft, no disk).
import { CpuSampler, announcedPort, log, runLoad, until } from "../support.js";
import { LedgerClient } from "@dispenser/ledger";
import { BARE_GRPC_MAIN, CLIENTS, DURATION_MS, NODE_OPTIONS, WARMUP_MS, spawnBounded } from "./config.js";
import { leaseOp } from "./ledger.js";
import { describe } from "./report.js";
import type { System } from "./systems.js";
import { closeAll, cpuTargets } from "./systems.js";

export async function upBare(): Promise<System> {
  const server = spawnBounded("grpc-bare", process.execPath, [
    ...NODE_OPTIONS,
    "--import",
    "tsx",
    BARE_GRPC_MAIN,
    "--listen",
    "127.0.0.1:0",
  ]);
  try {
    const port = await until("the bare gRPC server", 30_000, () => {
      if (server.proc.exitCode !== null || server.proc.signalCode !== null)
        throw new Error(`bare gRPC server exited:\n${server.output.join("")}`);
      return Promise.resolve(announcedPort(server));
    });
    log(`bare grpc-js server up at 127.0.0.1:${port}`);
    const clients = Array.from(
      { length: CLIENTS },
      () => new LedgerClient({ endpoints: [`127.0.0.1:${port}`] }),
    );
    const sampler = new CpuSampler(cpuTargets(() => [{ tag: "grpc-js bare server", pid: server.pid }]));
    const lease = leaseOp(clients, "bare");
    return {
      name: "bare",
      async warm(c, ms) {
        await runLoad(c, 0, ms, lease);
      },
      async measure(c) {
        const r = await runLoad(c, WARMUP_MS, DURATION_MS, lease, { sampler });
        log(`bare grpc-js c=${c}: ${describe(r)}`);
        return r;
      },
      down() {
        closeAll(clients);
        server.proc.kill("SIGKILL");
        return Promise.resolve();
      },
    };
  } catch (e) {
    server.proc.kill("SIGKILL");
    throw e;
  }
}
