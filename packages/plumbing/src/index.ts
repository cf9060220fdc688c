// Process plumbing shared by the ledger and the edge processes (and the CLI): the gRPC server on
// node:http2, command-line flags, the metrics endpoint, signal handling and addresses. No domain
// knowledge: it imports nothing of the project but the wire types its server speaks.
export { hostPortError, isLoopback, splitHostPort } from "./address.js";
export type { CommandSpec, FlagErrorFactory, FlagSpec } from "./flags.js";
export {
  COMMON_FLAGS,
  FlagError,
  Flags,
  PRECEDENCE_NOTE,
  envOf,
  helpText,
  parseFlags,
  readConfig,
} from "./flags.js";
export type { GrpcServerOptions } from "./grpc-server.js";
export { GrpcServer, callerOf, headerOf, remoteOf } from "./grpc-server.js";
export type { Identity, IdentityRole, ServerTls, TlsFiles, TlsMaterial } from "./tls.js";
export {
  IDENTITY_ROLES,
  TLS_HANDSHAKE_TIMEOUT_MS,
  expectIdentity,
  expectRole,
  identityOfCertificate,
  identityOfSocket,
  identityUri,
  onlyRole,
  loadTls,
  parseIdentity,
  serverTlsFromFlags,
  tlsFromFlags,
  tlsServerOptions,
} from "./tls.js";
export { serveMetrics } from "./metrics-http.js";
export { BoundedLabels, OTHER_LABEL } from "./bounded-labels.js";
export { stopOnSignals } from "./signals.js";
