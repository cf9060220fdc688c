import type { Logger } from "pino";

/**
 * SIGTERM or SIGINT stops a server process once: `stop` runs, then the process exits with 0, or
 * with 1 (and a log line) when stopping failed. Shared by the ledger and edge processes.
 */
export function stopOnSignals(logger: Logger, stop: () => Promise<unknown>): void {
  let stopping = false;
  const shutdown = (sig: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ sig }, "stopping");
    stop().then(
      () => process.exit(0),
      (e: unknown) => {
        logger.error({ err: String(e) }, "stop failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
}
