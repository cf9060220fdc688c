import { describe, expect, it } from "vitest";
import { optionsFrom as ledgerOptionsFrom } from "../../ledger/src/options.js";
import { optionsFrom, UsageError } from "../src/options.js";

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
});
