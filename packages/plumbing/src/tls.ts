// TLS material and the identities certificates carry. Every process of a cluster trusts one CA
// and is named by a URI in its certificate's subjectAltName:
//
//   dispenser://<cluster-id>/<role>/<name>     e.g. dispenser://prod-eu/ledger/3
//
// `ledger` names a member by its node id (the peer port accepts only these, and a message's sender
// must be the member its connection proved to be); `edge` and `admin` name clients. A certificate
// without such a URI, of another cluster, or not signed by the CA proves nothing.
import { readFileSync } from "node:fs";
import type { PeerCertificate, TLSSocket } from "node:tls";

export interface TlsFiles {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export interface TlsMaterial {
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
}

/**
 * What a server needs to speak TLS: its certificate and key, and optionally the CA its clients'
 * certificates must be signed by (mutual TLS: a client without one is refused at the handshake).
 */
export interface ServerTls {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca?: Buffer;
}

/** A client that has not finished its TLS handshake this long after connecting is cut. */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

/** The node:tls server options every dispenser TLS server shares. */
export function tlsServerOptions(
  tls: ServerTls,
  requireClientCert: boolean,
): {
  key: Buffer;
  cert: Buffer;
  ca?: Buffer;
  requestCert: boolean;
  rejectUnauthorized: boolean;
  minVersion: "TLSv1.2";
  handshakeTimeout: number;
} {
  return {
    key: tls.key,
    cert: tls.cert,
    ...(tls.ca ? { ca: tls.ca } : {}),
    requestCert: tls.ca !== undefined,
    rejectUnauthorized: tls.ca !== undefined && requireClientCert,
    minVersion: "TLSv1.2",
    handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS,
  };
}

export const IDENTITY_ROLES = ["ledger", "edge", "admin"] as const;
export type IdentityRole = (typeof IDENTITY_ROLES)[number];

export interface Identity {
  readonly cluster: string;
  readonly role: IdentityRole;
  readonly name: string;
}

const SCHEME = "dispenser://";
/** Cluster ids and names: what an operator would type, nothing a URI needs escaping for. */
const PART = /^[A-Za-z0-9._-]{1,128}$/;

export function identityUri(id: Identity): string {
  return `${SCHEME}${id.cluster}/${id.role}/${id.name}`;
}

export function parseIdentity(uri: string): Identity | undefined {
  if (!uri.startsWith(SCHEME)) return undefined;
  const [cluster, role, name, ...rest] = uri.slice(SCHEME.length).split("/");
  if (rest.length > 0 || cluster === undefined || role === undefined || name === undefined) return undefined;
  if (!PART.test(cluster) || !PART.test(name) || !IDENTITY_ROLES.includes(role as IdentityRole))
    return undefined;
  return { cluster, role: role as IdentityRole, name };
}

/** The one dispenser identity among a certificate's subjectAltName URIs (none, or two: none). */
export function identityOfCertificate(
  cert: Pick<PeerCertificate, "subjectaltname"> | undefined,
): Identity | undefined {
  const san = cert?.subjectaltname;
  if (!san) return undefined;
  const found = san
    .split(", ")
    .filter((e) => e.startsWith("URI:"))
    .map((e) => parseIdentity(e.slice(4)))
    .filter((i): i is Identity => i !== undefined);
  return found.length === 1 ? found[0] : undefined;
}

/** The identity a TLS connection's peer proved: a certificate the CA signed, naming one. */
export function identityOfSocket(socket: unknown): Identity | undefined {
  const s = socket as Partial<TLSSocket> | undefined;
  if (!s || s.authorized !== true || typeof s.getPeerCertificate !== "function") return undefined;
  return identityOfCertificate(s.getPeerCertificate());
}

/** Read the three files; a missing or unreadable one is named in the error. */
export function loadTls(files: TlsFiles): TlsMaterial {
  const read = (what: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (e) {
      throw new Error(`cannot read the TLS ${what} ${path}: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  return {
    ca: read("CA certificate", files.ca),
    cert: read("certificate", files.cert),
    key: read("key", files.key),
  };
}

/**
 * TLS from three flags: all three files, or none (plaintext); two of three is a mistake worth
 * stopping for. `fail` makes the process's own usage error.
 */
export function tlsFromFlags(
  flags: {
    readonly ca: string | undefined;
    readonly cert: string | undefined;
    readonly key: string | undefined;
  },
  names: string,
  fail: (message: string) => Error,
): TlsMaterial | undefined {
  const { ca, cert, key } = flags;
  const given = [ca, cert, key].filter((x) => x !== undefined).length;
  if (given === 0) return undefined;
  if (ca === undefined || cert === undefined || key === undefined) throw fail(`${names} go together`);
  try {
    return loadTls({ ca, cert, key });
  } catch (e) {
    throw fail(e instanceof Error ? e.message : String(e));
  }
}

/**
 * A server's TLS from its flags: a certificate and key (both or neither), and an optional client
 * CA that turns on mutual TLS (only with a certificate).
 */
export function serverTlsFromFlags(
  flags: {
    readonly cert: string | undefined;
    readonly key: string | undefined;
    readonly clientCa: string | undefined;
  },
  names: { readonly pair: string; readonly clientCa: string },
  fail: (message: string) => Error,
): ServerTls | undefined {
  const { cert, key, clientCa } = flags;
  if (cert === undefined && key === undefined) {
    if (clientCa !== undefined) throw fail(`${names.clientCa} needs ${names.pair}`);
    return undefined;
  }
  if (cert === undefined || key === undefined) throw fail(`${names.pair} go together`);
  const read = (what: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (e) {
      throw fail(`cannot read the TLS ${what} ${path}: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  return {
    cert: read("certificate", cert),
    key: read("key", key),
    ...(clientCa !== undefined ? { ca: read("client CA certificate", clientCa) } : {}),
  };
}

/** Whether an identity is of `cluster` and `role` (a server's `admit` for one role's port). */
export function onlyRole(cluster: string, role: IdentityRole): (id: Identity | undefined) => boolean {
  return (id) => id !== undefined && id.cluster === cluster && id.role === role;
}

/** A check of the server's certificate: it must name some `role` (any ledger member, say). */
export function expectRole(
  role: IdentityRole,
): (host: string, cert: Pick<PeerCertificate, "subjectaltname">) => Error | undefined {
  return (_host, cert) => {
    const id = identityOfCertificate(cert);
    return id?.role === role
      ? undefined
      : new Error(
          `the server's certificate names ${id ? identityUri(id) : "no dispenser identity"}, not a ${role}`,
        );
  };
}

/**
 * A check of the server's certificate for a client that dials a known member: it must name
 * `expected` (the hostname is not what identifies a member; its certificate is).
 */
export function expectIdentity(
  expected: Identity,
): (host: string, cert: Pick<PeerCertificate, "subjectaltname">) => Error | undefined {
  return (_host, cert) => {
    const got = identityOfCertificate(cert);
    if (got && got.cluster === expected.cluster && got.role === expected.role && got.name === expected.name)
      return undefined;
    return new Error(
      `the server's certificate names ${got ? identityUri(got) : "no dispenser identity"}, not ${identityUri(expected)}`,
    );
  };
}
