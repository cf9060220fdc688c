export type { AllocCommand, Grant } from "./allocator.js";
export { Allocator, decodeAlloc, encodeAlloc } from "./allocator.js";
export type { Violation } from "./checker.js";
export { Checker } from "./checker.js";
export { SimDisk } from "./disk.js";
export type { RaftImpl, SimOptions, SimResult } from "./simulation.js";
export { Simulation } from "./simulation.js";
