// Exit codes and the one error type commands throw. main() prints `dispenser: <message>` on one
// line of stderr and exits with the error's code; anything else that escapes is a bug (exit 70).

/** Exit codes, documented in `dispenser --help`. */
export const EXIT = {
  ok: 0,
  /** The server answered with an error (no such sequence, exists, exhausted, refused input). */
  server: 1,
  /** Bad command line: unknown command or flag, missing or malformed argument, bad config file. */
  usage: 2,
  /** The server could not be reached or did not answer in time. */
  unavailable: 3,
  /** A bug: an error nobody expected. */
  internal: 70,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    /** Appended to the message, e.g. "try 'dispenser seq --help'". */
    readonly hint?: string,
  ) {
    super(message);
  }
}

export function usageError(message: string, command?: string): CliError {
  return new CliError(message, EXIT.usage, `try 'dispenser ${command ? `${command} ` : ""}--help'`);
}
