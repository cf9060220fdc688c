// The client SDK: ids of one sequence from ranges leased through an edge, handed out locally.
//
//   const ids = createDispenser({ endpoints: ["127.0.0.1:50051"], sequence: "order_id" });
//   const id = await ids.next(); // bigint
//   await ids.close();
export type { BufferSource, DispenserStats, ParsedId, SequenceInfo } from "./types.js";
export { Dispenser, createDispenser } from "./dispenser.js";
export type { EdgeCredentials } from "./credentials.js";
export { credentialsFromEnv } from "./credentials.js";
export type { DispenserErrorCode } from "./errors.js";
export { DispenserError, isDispenserError } from "./errors.js";
export { parseIdString, toIdString } from "./ids.js";
export type { DispenserOptions, DrawMode } from "./options.js";
export { MAX_BATCH, MAX_RANGE_SIZE } from "./options.js";
