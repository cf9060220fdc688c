import { describe, expect, it } from "vitest";
import { expectIdentity, identityOfCertificate, identityUri, parseIdentity } from "../src/index.js";

// The identity a certificate carries: exactly one dispenser URI in its subjectAltName, or none.
describe("identities in certificates", () => {
  const node3 = { cluster: "prod-eu", role: "ledger", name: "3" } as const;

  it("reads the one dispenser URI among the SANs", () => {
    const san = `DNS:ledger-3, URI:${identityUri(node3)}, IP Address:127.0.0.1`;
    expect(identityOfCertificate({ subjectaltname: san })).toEqual(node3);
    expect(identityUri(node3)).toBe("dispenser://prod-eu/ledger/3");
  });

  it("finds none in a certificate without one, with two, or with a malformed one", () => {
    expect(identityOfCertificate(undefined)).toBeUndefined();
    expect(identityOfCertificate({ subjectaltname: "DNS:localhost" })).toBeUndefined();
    const two = `URI:${identityUri(node3)}, URI:dispenser://prod-eu/admin/ops`;
    expect(identityOfCertificate({ subjectaltname: two })).toBeUndefined();
    for (const bad of [
      "https://prod-eu/ledger/3",
      "dispenser://prod-eu/root/3",
      "dispenser://prod-eu/ledger",
      "dispenser://prod-eu/ledger/3/x",
      "dispenser://prod eu/ledger/3",
      "dispenser://prod-eu/ledger/%2e%2e",
      "dispenser:///ledger/3",
    ])
      expect(parseIdentity(bad), bad).toBeUndefined();
  });

  it("checks that a dialed member's certificate names it, whatever the hostname", () => {
    const check = expectIdentity(node3);
    expect(check("10.0.0.9", { subjectaltname: `URI:${identityUri(node3)}` })).toBeUndefined();
    const other = check("10.0.0.9", { subjectaltname: "URI:dispenser://prod-eu/ledger/4" });
    expect(other?.message).toBe(
      "the server's certificate names dispenser://prod-eu/ledger/4, not dispenser://prod-eu/ledger/3",
    );
    expect(check("x", { subjectaltname: "URI:dispenser://prod-us/ledger/3" })).toBeInstanceOf(Error);
  });
});
