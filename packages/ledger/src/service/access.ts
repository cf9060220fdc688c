// Who may call what on the Ledger service, when the node serves TLS: each method names the roles
// whose certificates (dispenser://<cluster>/<role>/<name>) may call it. Edges lease, read and
// change the catalog (for their own admin users: an edge checks its users' roles before it
// forwards a change); the membership, the marks, leader transfer and backups need an admin. A caller without a certificate of this cluster is UNAUTHENTICATED, one of another role
// PERMISSION_DENIED, and the handler never runs. Without TLS (the dev mode) every call is open.
import type { Identity, IdentityRole } from "@dispenser/plumbing";
import { callerOf, identityUri } from "@dispenser/plumbing";
import type { LedgerServer } from "@dispenser/proto";
import { ErrorReason, statusError } from "@dispenser/proto";
import { status } from "@grpc/grpc-js";
import type { sendUnaryData, ServerUnaryCall } from "@grpc/grpc-js";

const EDGE: readonly IdentityRole[] = ["edge", "admin"];
const ADMIN: readonly IdentityRole[] = ["admin"];

export const ACCESS = {
  createSequence: EDGE,
  updateSequence: EDGE,
  deleteSequence: EDGE,
  getSequence: EDGE,
  listSequences: EDGE,
  leaseSegment: EDGE,
  returnSegment: EDGE,
  raiseMark: ADMIN,
  backup: ADMIN,
  releaseRestore: ADMIN,
  clusterStatus: EDGE,
  addMember: ADMIN,
  removeMember: ADMIN,
  promoteMember: ADMIN,
  transferLeader: ADMIN,
} as const satisfies Record<string, readonly IdentityRole[]>;
export type LedgerMethod = keyof typeof ACCESS;

/** Why `caller` may not call `method`, or undefined. */
export function accessRefusal(
  clusterId: string,
  method: LedgerMethod,
  caller: Identity | undefined,
): { code: status; details: string } | undefined {
  if (!caller || caller.cluster !== clusterId)
    return {
      code: status.UNAUTHENTICATED,
      details: `${method} needs a certificate of cluster ${clusterId} (${caller ? identityUri(caller) : "none shown"})`,
    };
  const roles: readonly IdentityRole[] = ACCESS[method];
  if (!roles.includes(caller.role))
    return {
      code: status.PERMISSION_DENIED,
      details: `${method} is for ${roles.join(" or ")}; ${identityUri(caller)} is ${caller.role}`,
    };
  return undefined;
}

/** The handlers, each behind its access check. */
export function guarded(handlers: LedgerServer, clusterId: string): LedgerServer {
  const out: Partial<Record<LedgerMethod, unknown>> = {};
  for (const method of Object.keys(ACCESS) as LedgerMethod[]) {
    const h = handlers[method] as (
      call: ServerUnaryCall<unknown, unknown>,
      cb: sendUnaryData<unknown>,
    ) => void;
    out[method] = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>): void => {
      const refused = accessRefusal(clusterId, method, callerOf(call));
      if (refused)
        return callback(
          // The status code says it all: no reason of the ErrorDetail fits better.
          statusError(refused.code, refused.details, { reason: ErrorReason.ERROR_REASON_UNSPECIFIED }),
          null,
        );
      h(call, callback);
    };
  }
  return out as LedgerServer;
}
