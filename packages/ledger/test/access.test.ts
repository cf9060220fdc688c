import { LedgerService } from "@dispenser/proto";
import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { ACCESS, accessRefusal } from "../src/service/access.js";

describe("who may call the Ledger service over TLS", () => {
  it("names the roles of every method of the service, no more", () => {
    expect(Object.keys(ACCESS).sort()).toEqual(Object.keys(LedgerService).sort());
  });

  it("refuses a caller without an identity of this cluster, or of a role the method does not allow", () => {
    const admin = { cluster: "c", role: "admin", name: "ops" } as const;
    const edge = { cluster: "c", role: "edge", name: "eu1" } as const;
    expect(accessRefusal("c", "addMember", admin)).toBeUndefined();
    expect(accessRefusal("c", "leaseSegment", edge)).toBeUndefined();
    expect(accessRefusal("c", "addMember", edge)?.code).toBe(status.PERMISSION_DENIED);
    expect(accessRefusal("c", "leaseSegment", { ...edge, role: "ledger" })?.code).toBe(
      status.PERMISSION_DENIED,
    );
    expect(accessRefusal("c", "leaseSegment", undefined)?.code).toBe(status.UNAUTHENTICATED);
    expect(accessRefusal("c", "getSequence", { ...admin, cluster: "other" })?.code).toBe(
      status.UNAUTHENTICATED,
    );
  });
});
