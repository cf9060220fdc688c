// The edge dispenser's public surface.
export type { EdgeNodeOptions } from "./edge-node.js";
export { EdgeNode } from "./edge-node.js";
export type { EdgeErrorCode } from "./errors.js";
export { EdgeError } from "./errors.js";
export type { DispenserOptions, ReturnReport } from "./issuing/dispenser.js";
export { Dispenser } from "./issuing/dispenser.js";
export { STRATEGIES } from "./issuing/strategy.js";
export type { LedgerPort } from "./ledger/ledger-port.js";
export { GrpcLedgerPort } from "./ledger/grpc-ledger-port.js";
export { runEdge } from "./main.js";
export { optionsFrom as edgeOptionsFrom, usage as edgeUsage, UsageError } from "./options.js";
export { RedisPlane } from "./redis/index.js";
