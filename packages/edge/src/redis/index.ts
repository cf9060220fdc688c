// The edge's Redis plane: catalog mirror and per-edge counters under hash-tagged keys.
export { RedisPlaneError } from "./errors.js";
export {
  checkDc,
  checkEdgeId,
  checkSequenceName,
  definitionKey,
  EDGE_ID_PATTERN,
  edgesKey,
  guardKey,
  keySlot,
  poolKey,
  sequenceTag,
} from "./keys.js";
export type { RedisPlaneOptions } from "./redis-plane.js";
export { RedisPlane } from "./redis-plane.js";
export type { PlaneScript } from "./scripts.js";
export { PLANE_SCRIPTS } from "./scripts.js";
export type {
  DcGuard,
  DcStats,
  EdgeTotals,
  MirroredDefinition,
  MirrorOutcome,
  RedisPlaneErrorCode,
} from "./types.js";
export type {
  AddOutcome,
  CarveOutcome,
  PoolFence,
  PoolState,
  PoolWindow,
  ReservePoolOptions,
} from "./pool.js";
export { MAX_POOL_CARVE, MAX_POOL_WINDOW, MAX_POOL_WINDOWS, ReservePool } from "./pool.js";
export { POOL_SCRIPTS } from "./pool-scripts.js";
