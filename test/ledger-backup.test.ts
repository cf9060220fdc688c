import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BufferIo, runCli } from "@dispenser/cli";
import { LedgerClient, LedgerNode } from "@dispenser/ledger";
import { LedgerState } from "@dispenser/ledger/state";
import { status } from "@grpc/grpc-js";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "./support/ledger-cluster.js";
import { createRequest } from "./support/ledger-helpers.js";

// A backup is answered in parts (a large ledger's is far larger than one gRPC message): a real
// ledger node with 4 KiB parts, fetched by `dispenser ledger backup` and by a bare client.

describe("ledger backup in parts", () => {
  const dir = mkdtempSync(join(tmpdir(), "ledger-backup-"));
  let node: LedgerNode;
  let client: LedgerClient;
  let address: string;

  beforeAll(async () => {
    address = `127.0.0.1:${await freePort()}`;
    node = new LedgerNode({
      id: 1,
      clusterId: "backup-test",
      dataDir: join(dir, "n1"),
      listen: address,
      peers: new Map([[1, address]]),
      bootstrap: true,
      join: false,
      metricsListen: undefined,
      tickMs: 20,
      electionTicks: 10,
      snapshotEntries: 10_000,
      logger: pino({ level: "silent" }),
      backupPartBytes: 4096,
    });
    await node.start();
    client = new LedgerClient({ endpoints: [address], totalTimeoutMs: 20_000 });
    for (let i = 0; i < 200; i++) await client.call("createSequence", createRequest(`seq-${i}`));
    await client.call("leaseSegment", { sequence: "seq-7", dc: 0, size: 42n, requestId: "r", kind: 0 });
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("dispenser ledger backup fetches every part and writes the whole state", async () => {
    const out = join(dir, "backup.bin");
    const io = new BufferIo();
    expect(await runCli(["ledger", "backup", "--out", out, "--ledger", address], io)).toBe(0);
    const data = readFileSync(out);
    expect(data.byteLength).toBeGreaterThan(4 * 4096);
    const restored = LedgerState.restore(data);
    expect(restored.counts).toEqual({ live: 200, deleted: 0 });
    expect(restored.dcInfo("seq-7", 0)?.hwm).toBe(42n);
    expect(io.stdout).toMatch(new RegExp(`wrote .*: ${data.byteLength} bytes`));
  });

  it("parts come from one kept backup; an unknown id or an offset past the end is refused", async () => {
    const first = await client.call("backup", { backupId: "", offset: 0n });
    expect(first.state.byteLength).toBe(4096);
    expect(first.backupId).toMatch(/^[0-9a-f]{32}$/);
    // Changes after the first part are not in the parts that follow (one point in time).
    await client.call("createSequence", createRequest("later"));
    const parts = [first.state];
    for (let got = 4096n; got < first.totalBytes; got += 4096n)
      parts.push((await client.call("backup", { backupId: first.backupId, offset: got })).state);
    const whole = Buffer.concat(parts);
    expect(BigInt(whole.byteLength)).toBe(first.totalBytes);
    expect(LedgerState.restore(whole).get("later")).toBeUndefined();
    const err = (p: Promise<unknown>) =>
      p.then(
        () => undefined,
        (e: { code?: number; details?: string }) => e,
      );
    expect(await err(client.call("backup", { backupId: "f".repeat(32), offset: 0n }))).toMatchObject({
      code: status.NOT_FOUND,
    });
    expect(
      await err(client.call("backup", { backupId: first.backupId, offset: first.totalBytes + 1n })),
    ).toMatchObject({ code: status.OUT_OF_RANGE });
  });
});
