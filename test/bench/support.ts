// Helpers for the benchmark scripts, one module each in support/: runs that stay bounded
// (run.ts), child processes that never outlive the run (processes.ts), CPU sampling from /proc
// (cpu.ts), a closed-loop load generator (load.ts), an etcd v3 client (etcd.ts), .cpuprofile
// summaries (profiles.ts) and --trace-gc summaries (gc.ts).
export { log, fmt, posInt, sleep, table, until, withTimeout } from "./support/run.js";
export type { Child } from "./support/processes.js";
export { alive, announcedPort, freePort, HAVE_SETPRIV, Reaper, spawnBounded } from "./support/processes.js";
export type { CpuWindow } from "./support/cpu.js";
export { CpuSampler, cpuSeconds, machineBusyOver, machineTicks, scrapeMetrics } from "./support/cpu.js";
export type { LoadResult, WindowHooks } from "./support/load.js";
export { median, percentile, runLoad } from "./support/load.js";
export type { EtcdStatus } from "./support/etcd.js";
export { EtcdKv, putRequest, putResponseTerm } from "./support/etcd.js";
export type { HotSpot, ProfileSummary } from "./support/profiles.js";
export { hotSpots } from "./support/profiles.js";
export type { GcSummary } from "./support/gc.js";
export { gcSummary } from "./support/gc.js";
