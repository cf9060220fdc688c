export type { AppResult } from "./ledger-app.js";
export { LedgerApp, appSnapshot, encodeLedgerCommand, encodeMemberAddress } from "./ledger-app.js";
export type { RestoreOptions, RestoreSummary } from "./restore.js";
export { restoreDataDir } from "./restore.js";
export { LedgerMetrics } from "./metrics.js";
export type { LedgerNodeOptions } from "./node.js";
export { LedgerNode, StartupError } from "./node.js";
export type { Application, RaftServerOptions, Transport } from "./raft-server/raft-server.js";
export {
  DEFAULT_TICK_MS,
  NotLeaderError,
  ProposalDroppedError,
  ProposalRejectedError,
  RaftServer,
} from "./raft-server/raft-server.js";
export { LedgerService } from "./service/ledger-service.js";
export { LevelStorage, StorageCorruptError } from "./storage/level-storage.js";
export { PeerTransport } from "./transport/peer-transport.js";
export type { LedgerClientOptions, LedgerMethod } from "./client/ledger-client.js";
export { LedgerClient } from "./client/ledger-client.js";
export { runLedger } from "./main.js";
export { optionsFrom as ledgerOptionsFrom, usage as ledgerUsage } from "./options.js";
