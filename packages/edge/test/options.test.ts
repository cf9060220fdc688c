import { describe, expect, it } from "vitest";
import { optionsFrom as ledgerOptionsFrom } from "../../ledger/src/options.js";
import { optionsFrom, UsageError } from "../src/options.js";
import { exposureWarnings } from "../src/edge-node.js";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

describe("process flags", () => {
  it("an inline value may itself contain '=' (ledger --peers=1=host:port)", () => {
    const o = ledgerOptionsFrom([
      "--id=1",
      "--data-dir=/tmp/l1",
      "--peers=1=127.0.0.1:7101,2=127.0.0.1:7102",
    ]);
    expect(o).not.toBe("help");
    if (o === "help") return;
    expect([...o.peers]).toEqual([
      [1, "127.0.0.1:7101"],
      [2, "127.0.0.1:7102"],
    ]);
    expect(o.listen).toBe("127.0.0.1:7101");
  });

  it("ledger peer ports: --peer-listen with --peer-addresses for every member", () => {
    const base = [
      "--id",
      "1",
      "--data-dir",
      "/tmp/l1",
      "--peers",
      "1=10.0.0.1:7101,2=10.0.0.2:7101",
      "--insecure",
    ];
    const o = ledgerOptionsFrom([...base, "--peer-addresses", "1=10.0.0.1:7201,2=10.0.0.2:7201"]);
    if (o === "help") throw new Error("help");
    expect(o.peerListen).toBe("10.0.0.1:7201");
    expect(o.listen).toBe("10.0.0.1:7101");
    expect(() => ledgerOptionsFrom([...base, "--peer-listen", "0.0.0.0:7201"])).toThrow(
      /--peer-listen needs --peer-addresses/,
    );
    expect(() => ledgerOptionsFrom([...base, "--peer-addresses", "1=10.0.0.1:7201"])).toThrow(
      /--peer-addresses does not list node 2/,
    );
    expect(() =>
      ledgerOptionsFrom([...base, "--peer-addresses", "1=10.0.0.1:7201,2=10.0.0.2:7201,7=10.0.0.7:7201"]),
    ).toThrow(/--peer-addresses lists node 7, which --peers does not/);
    const shared = ledgerOptionsFrom(base);
    if (shared === "help") throw new Error("help");
    expect(shared.peerListen).toBeUndefined();
  });

  it("edge flags in both forms, defaults, and clear errors", () => {
    const o = optionsFrom(["--ledger=127.0.0.1:1,127.0.0.1:2", "--dc", "3", "--resp-listen=off"]);
    expect(o).not.toBe("help");
    if (o === "help") return;
    expect(o.ledgerEndpoints).toEqual(["127.0.0.1:1", "127.0.0.1:2"]);
    expect(o.dc).toBe(3);
    expect(o.respListen).toBeUndefined();
    expect(o.grpcListen).toBe("127.0.0.1:50051");
    expect(() => optionsFrom([])).toThrow(/--ledger is required/);
    expect(() => optionsFrom(["--ledger", "a:1", "--dc", "x"])).toThrow(UsageError);
    expect(() => optionsFrom(["--ledger", "a:1", "--colour", "red"])).toThrow(/unknown flag --colour/);
  });

  it("edge TLS flags: a certificate and key together, a client CA and a TLS port only with them", () => {
    const dir = mkdtempSync(join(tmpdir(), "edge-opts-"));
    const f = (n: string): string => (writeFileSync(join(dir, n), n), join(dir, n));
    const [cert, key, ca] = [f("cert.pem"), f("key.pem"), f("ca.pem")];
    const base = ["--ledger", "127.0.0.1:1"];
    expect(() => optionsFrom([...base, "--tls-cert", cert])).toThrow(/--tls-cert and --tls-key go together/);
    expect(() => optionsFrom([...base, "--tls-client-ca", ca])).toThrow(/--tls-client-ca needs --tls-cert/);
    expect(() => optionsFrom([...base, "--resp-tls-listen", "127.0.0.1:6390"])).toThrow(
      /--resp-tls-listen needs --tls-cert and --tls-key/,
    );
    expect(() => optionsFrom([...base, "--tls-cert", cert, "--tls-key", join(dir, "absent")])).toThrow(
      /cannot read the TLS key .*absent/,
    );
    const o = optionsFrom([
      ...base,
      "--tls-cert",
      cert,
      "--tls-key",
      key,
      "--tls-client-ca",
      ca,
      "--resp-tls-listen",
      "127.0.0.1:6390",
    ]);
    if (o === "help") throw new Error("help");
    expect(o.tls?.cert.toString()).toBe("cert.pem");
    expect(o.tls?.ca?.toString()).toBe("ca.pem");
    expect(o.respTlsListen).toBe("127.0.0.1:6390");
  });

  it("refuses ports open beyond loopback without TLS or users, unless --insecure (then warns)", () => {
    const open = ["--ledger", "10.0.0.5:7101", "--grpc-listen", "0.0.0.0:50051"];
    expect(() => optionsFrom(open)).toThrow(/gRPC on 0.0.0.0:50051 is plaintext.*Pass --insecure/);
    const ledgerOpen = ["--id=1", "--data-dir=/tmp/l1", "--peers=1=0.0.0.0:7101"];
    expect(() => ledgerOptionsFrom(ledgerOpen)).toThrow(/0.0.0.0:7101 beyond loopback without TLS/);
    expect(ledgerOptionsFrom([...ledgerOpen, "--insecure"])).not.toBe("help");
    const o = optionsFrom([
      "--insecure",
      "--ledger",
      "10.0.0.5:7101",
      "--grpc-listen",
      "0.0.0.0:50051",
      "--resp-listen",
      "0.0.0.0:6380",
    ]);
    if (o === "help") throw new Error("help");
    const w = exposureWarnings(o).join("\n");
    expect(w).toMatch(/gRPC on 0.0.0.0:50051 is plaintext/);
    expect(w).toMatch(/RESP on 0.0.0.0:6380 is plaintext/);
    expect(w).toMatch(/no --users: anyone who reaches this edge/);
    expect(w).toMatch(/the ledger is reached in plaintext/);
    const local = optionsFrom(["--ledger", "127.0.0.1:7101"]);
    if (local === "help") throw new Error("help");
    expect(exposureWarnings(local)).toEqual([]);
  });
});
