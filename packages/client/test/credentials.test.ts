import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createDispenser, credentialsFromEnv } from "../src/index.js";

describe("credentialsFromEnv", () => {
  const dir = mkdtempSync(join(tmpdir(), "dispenser-creds-"));
  const tokenFile = join(dir, "token");
  writeFileSync(tokenFile, "orders:s3cret\n");
  const ca = join(dir, "ca.pem");
  writeFileSync(ca, "not checked here");

  it("reads nothing from an empty environment: plaintext, no token", () => {
    expect(credentialsFromEnv({})).toEqual({});
    expect(credentialsFromEnv({ DISPENSER_TOKEN: "", DISPENSER_TLS: "0" })).toEqual({});
  });

  it("reads the token inline or from a file (trimmed), never both", () => {
    expect(credentialsFromEnv({ DISPENSER_TOKEN: "a:b" })).toEqual({ token: "a:b" });
    expect(credentialsFromEnv({ DISPENSER_TOKEN_FILE: tokenFile })).toEqual({ token: "orders:s3cret" });
    expect(() => credentialsFromEnv({ DISPENSER_TOKEN: "a:b", DISPENSER_TOKEN_FILE: tokenFile })).toThrow(
      /not both/,
    );
    expect(() => credentialsFromEnv({ DISPENSER_TOKEN_FILE: join(dir, "absent") })).toThrow(
      /DISPENSER_TOKEN_FILE: cannot read/,
    );
  });

  it("turns TLS on with a CA file, or with DISPENSER_TLS for the system's roots", () => {
    expect(credentialsFromEnv({ DISPENSER_TLS: "1" })).toEqual({ tls: {} });
    expect(credentialsFromEnv({ DISPENSER_TLS: "true" })).toEqual({ tls: {} });
    expect(() => credentialsFromEnv({ DISPENSER_TLS: "yes" })).toThrow(
      /DISPENSER_TLS must be 1, true, 0 or false/,
    );
    const c = credentialsFromEnv({ DISPENSER_TLS_CA: ca });
    expect(c.tls?.ca?.toString()).toBe("not checked here");
  });

  it("is checked by createDispenser like any option", () => {
    const base = { endpoints: ["127.0.0.1:1"], sequence: "s" };
    expect(() => createDispenser({ ...base, token: "no colon" })).toThrow(/token must be user:secret/);
    expect(() => createDispenser({ ...base, token: "a:b c" })).toThrow(/token must be user:secret/);
    // A token never crosses the network in plaintext unless asked to.
    const remote = { endpoints: ["10.0.0.5:50051"], sequence: "s" };
    expect(() => createDispenser({ ...remote, token: "a:b" })).toThrow(/needs tls/);
    expect(() => createDispenser({ ...remote, token: "a:b", allowPlaintextToken: true })).not.toThrow();
    expect(() => createDispenser({ ...base, token: "a:b" })).not.toThrow();
    expect(() => createDispenser({ ...base, tls: { cert: Buffer.from("x") } })).toThrow(
      /tls.cert and tls.key go together/,
    );
  });
});
