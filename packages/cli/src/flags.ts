// The CLI's flags: the parser every process shares (@dispenser/plumbing), reporting a bad command
// line as the CLI's usage error (exit 2, with a pointer to the command's --help).
import type { CommandSpec, Flags } from "@dispenser/plumbing";
import { parseFlags as parseWith } from "@dispenser/plumbing";
import { usageError } from "./errors.js";

export type { CommandSpec, FlagSpec } from "@dispenser/plumbing";
export { Flags, helpText, PRECEDENCE_NOTE, readConfig } from "@dispenser/plumbing";

export function parseFlags(
  spec: CommandSpec,
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Flags {
  return parseWith(spec, argv, env, (message, command) => usageError(message, command));
}
