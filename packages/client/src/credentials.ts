// Credentials from the environment, so that no secret needs to be on a command line (where `ps`
// shows it) or in code:
//
//   DISPENSER_TOKEN        user:secret of a user in the edge's --users file
//   DISPENSER_TOKEN_FILE   a file holding it (a Kubernetes Secret mounted as a file)
//   DISPENSER_TLS_CA       the edges' CA certificate (PEM file): TLS with it
//   DISPENSER_TLS          "1" or "true": TLS with the system's roots (without DISPENSER_TLS_CA)
//   DISPENSER_TLS_CERT     client certificate (PEM file), for an edge with --tls-client-ca
//   DISPENSER_TLS_KEY      its key
//
//   createDispenser({ endpoints, sequence, ...credentialsFromEnv() })
import { readFileSync } from "node:fs";
import { DispenserError } from "./errors.js";
import type { DispenserOptions } from "./options.js";

export type EdgeCredentials = Pick<DispenserOptions, "token" | "tls">;

function readFile(variable: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new DispenserError(
      "invalid-argument",
      `${variable}: cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`,
      { field: variable },
    );
  }
}

/** The token and TLS the environment names (see above); nothing set: neither. */
export function credentialsFromEnv(
  env: Readonly<Record<string, string | undefined>> = process.env,
): EdgeCredentials {
  const set = (k: string): string | undefined => (env[k] !== undefined && env[k] !== "" ? env[k] : undefined);
  const inline = set("DISPENSER_TOKEN");
  const file = set("DISPENSER_TOKEN_FILE");
  if (inline !== undefined && file !== undefined)
    throw new DispenserError("invalid-argument", "set DISPENSER_TOKEN or DISPENSER_TOKEN_FILE, not both", {
      field: "DISPENSER_TOKEN_FILE",
    });
  const token =
    inline ??
    (file !== undefined ? readFile("DISPENSER_TOKEN_FILE", file).toString("utf8").trim() : undefined);
  const ca = set("DISPENSER_TLS_CA");
  const cert = set("DISPENSER_TLS_CERT");
  const key = set("DISPENSER_TLS_KEY");
  const flag = set("DISPENSER_TLS");
  if (flag !== undefined && !["1", "true", "0", "false"].includes(flag))
    throw new DispenserError(
      "invalid-argument",
      `DISPENSER_TLS must be 1, true, 0 or false, got ${JSON.stringify(flag)}`,
      {
        field: "DISPENSER_TLS",
      },
    );
  const on = ca !== undefined || cert !== undefined || key !== undefined || flag === "1" || flag === "true";
  return {
    ...(token !== undefined ? { token } : {}),
    ...(on
      ? {
          tls: {
            ...(ca !== undefined ? { ca: readFile("DISPENSER_TLS_CA", ca) } : {}),
            ...(cert !== undefined ? { cert: readFile("DISPENSER_TLS_CERT", cert) } : {}),
            ...(key !== undefined ? { key: readFile("DISPENSER_TLS_KEY", key) } : {}),
          },
        }
      : {}),
  };
}
