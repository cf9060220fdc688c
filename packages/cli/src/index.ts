// The dispenser command, importable: run a command line, or embed the dev cluster.
export type { DevClusterOptions, DevEdge, DevEndpoints } from "./commands/dev.js";
export { DevCluster, devOptionsFrom } from "./commands/dev.js";
export { DEV_DEFAULTS } from "./defaults.js";
export { mainHelp, runCli } from "./cli.js";
export type { ExitCode } from "./errors.js";
export { CliError, EXIT } from "./errors.js";
export type { CommandSpec, FlagSpec } from "./flags.js";
export { Flags, helpText, parseFlags } from "./flags.js";
export type { Io } from "./io.js";
export { BufferIo, processIo } from "./io.js";
export { mergeLedgerText } from "./metrics.js";
export { main } from "./main.js";
