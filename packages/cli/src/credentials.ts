// How the CLI proves itself: to an edge, TLS and a user's token; to the ledger, TLS with a client
// certificate (an admin's for membership, marks and backups). Every secret comes from a file or
// the environment, never only from a flag, so that `ps` does not show it: the token is read from
// --token-file or DISPENSER_TOKEN, the same variables the SDK's credentialsFromEnv() reads.
import type { EdgeCredentials } from "@dispenser/client";
import { credentialsFromEnv, isDispenserError } from "@dispenser/client";
import type { TlsMaterial } from "@dispenser/plumbing";
import { expectRole, isLoopback, tlsFromFlags } from "@dispenser/plumbing";
import type { ChannelCredentials } from "@grpc/grpc-js";
import { credentials, Metadata } from "@grpc/grpc-js";
import { usageError } from "./errors.js";
import type { FlagSpec, Flags } from "./flags.js";

export const EDGE_CREDENTIAL_FLAGS: readonly FlagSpec[] = [
  { name: "tls", boolean: true, help: "TLS to the edge, trusting the system's CAs (or DISPENSER_TLS=1)" },
  {
    name: "tls-ca",
    value: "file",
    env: "DISPENSER_TLS_CA",
    help: "the edge's CA certificate (PEM): TLS, trusting it",
  },
  {
    name: "tls-cert",
    value: "file",
    env: "DISPENSER_TLS_CERT",
    help: "a client certificate (PEM), for an edge with --tls-client-ca",
  },
  { name: "tls-key", value: "file", env: "DISPENSER_TLS_KEY", help: "the key of --tls-cert (PEM)" },
  {
    name: "token-file",
    value: "file",
    env: "DISPENSER_TOKEN_FILE",
    help: "a file holding user:secret, for an edge with --users (or set DISPENSER_TOKEN)",
  },
];

export const LEDGER_CREDENTIAL_FLAGS: readonly FlagSpec[] = [
  {
    name: "ledger-tls-ca",
    value: "file",
    env: "DISPENSER_LEDGER_TLS_CA",
    help: "the ledger's CA certificate (PEM): TLS to the ledger",
  },
  {
    name: "ledger-tls-cert",
    value: "file",
    env: "DISPENSER_LEDGER_TLS_CERT",
    help: "your certificate for the ledger (dispenser://<cluster>/admin/<name> for admin calls)",
  },
  { name: "ledger-tls-key", value: "file", env: "DISPENSER_LEDGER_TLS_KEY", help: "its key (PEM)" },
];

/** Channel credentials and call metadata for an edge. */
export interface EdgeAccess {
  readonly channel: ChannelCredentials;
  /** Metadata for one call (a fresh object: grpc-js may change the one it is given). */
  metadata(): Metadata;
  /** The same, as the SDK's options. */
  readonly sdk: EdgeCredentials;
}

export function edgeAccess(f: Flags, env: Readonly<Record<string, string | undefined>>): EdgeAccess {
  const edge = f.str("edge");
  let sdk: EdgeCredentials;
  try {
    sdk = credentialsFromEnv({
      DISPENSER_TOKEN: env.DISPENSER_TOKEN,
      DISPENSER_TOKEN_FILE: f.str("token-file"),
      DISPENSER_TLS: f.bool("tls") ? "1" : env.DISPENSER_TLS,
      DISPENSER_TLS_CA: f.str("tls-ca"),
      DISPENSER_TLS_CERT: f.str("tls-cert"),
      DISPENSER_TLS_KEY: f.str("tls-key"),
    });
  } catch (e) {
    throw usageError(isDispenserError(e) ? e.message : String(e), f.command);
  }
  const tls = sdk.tls;
  if (tls && (tls.cert === undefined) !== (tls.key === undefined))
    throw usageError("--tls-cert and --tls-key go together", f.command);
  if (sdk.token !== undefined && !tls && edge !== undefined && !isLoopback(edge))
    throw usageError(
      `a token to ${edge} would cross the network in the clear: give --tls-ca (or --tls) too`,
      f.command,
    );
  const channel = tls
    ? credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null)
    : credentials.createInsecure();
  const authorization = sdk.token !== undefined ? `Bearer ${sdk.token}` : undefined;
  return {
    channel,
    sdk,
    metadata: () => {
      const md = new Metadata();
      if (authorization !== undefined) md.set("authorization", authorization);
      return md;
    },
  };
}

/** Plaintext to the edge, no token: what `dispenser dev` serves. */
export const DEV_EDGE_ACCESS: EdgeAccess = {
  channel: credentials.createInsecure(),
  sdk: {},
  metadata: () => new Metadata(),
};

/** TLS to the ledger from its three flags (all or none). */
export function ledgerTls(f: Flags): TlsMaterial | undefined {
  return tlsFromFlags(
    { ca: f.str("ledger-tls-ca"), cert: f.str("ledger-tls-cert"), key: f.str("ledger-tls-key") },
    "--ledger-tls-ca, --ledger-tls-cert and --ledger-tls-key",
    (m) => usageError(m, f.command),
  );
}

/** Channel credentials for one ledger node: its certificate must name a ledger member. */
export function ledgerChannel(tls: TlsMaterial | undefined): ChannelCredentials {
  return tls
    ? credentials.createSsl(tls.ca, tls.key, tls.cert, { checkServerIdentity: expectRole("ledger") })
    : credentials.createInsecure();
}
