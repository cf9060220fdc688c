import { execFileSync } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LedgerClient } from "@dispenser/ledger";
import { afterAll, describe, expect, it } from "vitest";
import { LedgerCluster } from "./support/ledger-cluster.js";
import { createRequest, sleep, waitForLeader } from "./support/ledger-helpers.js";

// A storage write that fails stops the node: no retry of a failed write or fsync, since after a
// failed fsync the kernel may have dropped the dirty pages and a second fsync would report
// success for data that is gone. Node 1's data directory is a small tmpfs that the test fills, so
// LevelDB's own write fails with ENOSPC, as a full disk would make it.

/** Whether this process may mount a tmpfs (root on a machine or in a privileged container): tried. */
function canMount(): boolean {
  if (process.platform !== "linux" || process.getuid?.() !== 0) return false;
  const dir = mkdtempSync(join(tmpdir(), "mount-probe-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", dir], { stdio: "ignore" });
    execFileSync("umount", [dir], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Fill the filesystem holding `dir` up to its last page; returns the filler's path. */
function fill(dir: string): string {
  const path = join(dir, "filler");
  const fd = openSync(path, "w");
  try {
    for (const size of [1 << 20, 64 << 10, 4 << 10, 512]) {
      const chunk = Buffer.alloc(size, 0x5a);
      for (;;) {
        try {
          if (writeSync(fd, chunk) < size) break;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === "ENOSPC") break;
          throw e;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return path;
}

interface Ack {
  start: bigint;
  end: bigint;
}

describe.skipIf(!canMount())("a ledger node whose disk fills up (real processes, tmpfs)", () => {
  const clusters: { cluster: LedgerCluster; mounted?: string; clients: LedgerClient[] }[] = [];

  afterAll(async () => {
    for (const c of clusters) {
      for (const cl of c.clients) cl.close();
      if (c.cluster.nodes.get(1)?.proc) await c.cluster.kill(1).catch(() => undefined);
      if (c.mounted) execFileSync("umount", [c.mounted]);
      await c.cluster.stop();
    }
  });

  it.each(["follower", "leader"] as const)(
    "as a %s: exits on the failed write, the others serve on, and it rejoins once there is room",
    async (role) => {
      const cluster = new LedgerCluster([1, 2, 3]);
      const c: (typeof clusters)[number] = { cluster, clients: [] };
      clusters.push(c);
      await cluster.init();
      const disk = cluster.nodes.get(1)!.dataDir;
      mkdirSync(disk, { recursive: true });
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=16m", "tmpfs", disk]);
      c.mounted = disk;
      cluster.startAll();
      const client = new LedgerClient({ endpoints: cluster.addresses(), totalTimeoutMs: 20_000 });
      c.clients.push(client);
      await waitForLeader(client);
      await client.call("createSequence", createRequest("full"));
      // Node 1 takes the role under test.
      for (let i = 0; i < 50; i++) {
        const leader = Number((await client.call("clusterStatus", {})).leaderId);
        if ((leader === 1) === (role === "leader")) break;
        await client.call("transferLeader", { to: role === "leader" ? 1n : 2n }).catch(() => undefined);
        await sleep(100);
      }
      expect(Number((await client.call("clusterStatus", {})).leaderId) === 1).toBe(role === "leader");

      const acks: Ack[] = [];
      let n = 0;
      const lease = async (): Promise<void> => {
        const r = await client.call("leaseSegment", {
          sequence: "full",
          dc: 0,
          size: 100n,
          requestId: `disk-full-${n++}`,
          kind: 0,
        });
        acks.push({ start: r.grant!.start, end: r.grant!.end });
      };
      for (let i = 0; i < 20; i++) await lease();

      const filler = fill(disk);
      // Every lease is an entry node 1 must write: within a page or two of log records its write
      // fails and it stops. Leases go on meanwhile (through an election if node 1 led).
      const exited = cluster.waitExit(1, 30_000);
      let done = false;
      void exited.then(() => (done = true));
      const filledAt = n;
      for (let i = 0; i < 2_000 && !done; i++) await lease().catch(() => sleep(20));
      expect(await exited).toBe(1);
      const tried = n - filledAt;
      expect(cluster.logs(1)).toMatch(/fatal error in the Raft loop \(storage failure/);
      expect(cluster.logs(1)).toMatch(/No space left on device|ENOSPC/);

      // The two others still make a quorum.
      for (let i = 0; i < 20; i++) await lease();
      const before = acks.length;

      // Room again: node 1 starts from what it had synced and catches up. It answers for itself;
      // nodes 2 and 3 say how far the cluster has committed.
      rmSync(filler);
      cluster.start(1);
      const solo = new LedgerClient({ endpoints: [cluster.address(1)], totalTimeoutMs: 5_000 });
      const others = new LedgerClient({
        endpoints: [cluster.address(2), cluster.address(3)],
        totalTimeoutMs: 5_000,
      });
      c.clients.push(solo, others);
      let caughtUp = false;
      for (let i = 0; i < 100 && !caughtUp; i++) {
        await lease();
        const st = await solo.call("clusterStatus", {}).catch(() => undefined);
        const lead = await others.call("clusterStatus", {}).catch(() => undefined);
        caughtUp =
          st !== undefined &&
          lead !== undefined &&
          st.nodeId === 1n &&
          lead.nodeId !== 1n &&
          st.leaderId !== 0n &&
          st.applied >= lead.commit;
        if (!caughtUp) await sleep(100);
      }
      expect(caughtUp).toBe(true);
      expect(acks.length).toBeGreaterThan(before);

      // Nothing acknowledged overlaps anything else acknowledged, before, during or after.
      const sorted = [...acks].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
      let overlapping = 0;
      for (let i = 1; i < sorted.length; i++) if (sorted[i]!.start < sorted[i - 1]!.end) overlapping++;
      console.log(
        `disk full (${role}): node 1 exited 1 within ${tried} leases of the fill; ` +
          `${acks.length} of ${n} leases acknowledged, overlapping: ${overlapping}`,
      );
      expect(overlapping).toBe(0);
    },
    90_000,
  );
});
