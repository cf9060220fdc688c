import { execFile, execFileSync, spawnSync } from "node:child_process";
import { promisify } from "node:util";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { LedgerClient } from "@dispenser/ledger";
import type { Message } from "@dispenser/raft";
import { MessageType, message } from "@dispenser/raft";
import type { SnapshotChunk } from "@dispenser/proto";
import { PeerClient } from "@dispenser/proto";
import type { ChannelCredentials, ServiceError } from "@grpc/grpc-js";
import { Metadata, credentials, status } from "@grpc/grpc-js";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toPbMessage } from "../packages/ledger/src/transport/convert.js";
import { EdgeProcess } from "./support/edge-process.js";
import { freePort, LedgerCluster } from "./support/ledger-cluster.js";
import { createRequest, until, waitForLeader } from "./support/ledger-helpers.js";

// Members over mutual TLS, with certificates made by the documented recipe
// (deploy/certs/make-dev-certs.sh): the attacks that used to work on the plaintext port, each
// made by a real gRPC client against real ledger processes, and refused.

const REPO = resolve(import.meta.dirname, "..");
const RECIPE = join(REPO, "deploy", "certs", "make-dev-certs.sh");
const run = promisify(execFile);
const hasRedisCli = spawnSync("redis-cli", ["--version"]).status === 0;

describe("ledger members over mutual TLS (real processes)", () => {
  // Peer traffic on ports of its own (--peer-listen), as production runs it.
  const cluster = new LedgerCluster([1, 2, 3], { peerPorts: true });
  const certs = join(cluster.dir, "certs");
  const strangers = join(cluster.dir, "strangers");
  const metricsPort: Record<number, number> = {};
  let admin: LedgerClient;
  const pem = (dir: string, name: string): Buffer => readFileSync(join(dir, `${name}.pem`));
  const tlsArgs = (id: number): string[] => [
    "--tls-ca",
    join(certs, "ca.pem"),
    "--tls-cert",
    join(certs, `ledger-${id}.pem`),
    "--tls-key",
    join(certs, `ledger-${id}-key.pem`),
  ];
  /** A Peer client to node 1 that shows `name`'s certificate of `dir` (or none). */
  const peerClient = (name?: string, dir = certs): PeerClient => {
    const creds: ChannelCredentials = credentials.createSsl(
      pem(certs, "ca"),
      name ? pem(dir, `${name}-key`) : null,
      name ? pem(dir, name) : null,
    );
    return new PeerClient(cluster.peerAddress(1), creds);
  };
  const send = (c: PeerClient, from: bigint, messages: Message[]): Promise<ServiceError | undefined> => {
    const md = new Metadata();
    md.set("dispenser-incarnation", `test-${from}`);
    return new Promise((r) =>
      c.send(
        { clusterId: cluster.clusterId, from, to: 1n, messages: messages.map((m) => toPbMessage(m)) },
        md,
        (e) => r(e ?? undefined),
      ),
    );
  };
  const refusedCount = async (kind: string): Promise<number> => {
    const body = await (await fetch(`http://127.0.0.1:${metricsPort[1]}/metrics`)).text();
    const m = new RegExp(
      `^dispenser_ledger_peer_messages_refused_total\\{node="1",kind="${kind}"\\} (\\d+)`,
      "m",
    ).exec(body);
    return m ? Number(m[1]) : -1;
  };

  /** The end of the last grant: every new one starts at or above it. */
  let granted = 0n;
  const lease = async (requestId: string): Promise<{ start: bigint; end: bigint }> => {
    const r = await admin.call("leaseSegment", { sequence: "tls", dc: 0, size: 100n, requestId, kind: 0 });
    const g = { start: r.grant!.start, end: r.grant!.end };
    expect(g.start).toBeGreaterThanOrEqual(granted);
    granted = g.end;
    return g;
  };

  beforeAll(async () => {
    execFileSync(RECIPE, [
      certs,
      cluster.clusterId,
      "ledger-1",
      "ledger-2",
      "ledger-3",
      "ledger-9",
      "admin-ops",
      "edge-eu1",
    ]);
    // Another CA's certificate naming member 2 of this very cluster: a forgery.
    execFileSync(RECIPE, [strangers, cluster.clusterId, "ledger-2"]);
    await cluster.init();
    for (const id of cluster.ids) {
      metricsPort[id] = await freePort();
      cluster.start(id, [...tlsArgs(id), "--metrics-listen", `127.0.0.1:${metricsPort[id]}`, "--bootstrap"]);
    }
    admin = new LedgerClient({
      endpoints: cluster.addresses(),
      tls: { ca: pem(certs, "ca"), cert: pem(certs, "admin-ops"), key: pem(certs, "admin-ops-key") },
    });
    await waitForLeader(admin, 30_000);
    await admin.call("createSequence", createRequest("tls"));
  }, 60_000);

  afterAll(async () => {
    admin?.close();
    await cluster.stop();
  });

  it("commits over TLS: a lease is granted and every node applies it", async () => {
    const g = await lease("tls-1");
    expect(g.end - g.start).toBe(100n);
    expect(cluster.logs(1)).not.toMatch(/plaintext/);
  });

  it("refuses a plaintext client on the TLS port", async () => {
    const c = new PeerClient(cluster.peerAddress(1), credentials.createInsecure());
    try {
      const e = await send(c, 9n, [message({ type: MessageType.Heartbeat, from: 9, to: 1, term: 99 })]);
      expect(e?.code).toBe(status.UNAVAILABLE);
    } finally {
      c.close();
    }
  });

  it("refuses peer messages without a certificate or with another CA's at the handshake, and a non-member's", async () => {
    // Term 0 once stopped a node; a high term would have deposed the leader.
    const attack = [
      message({ type: MessageType.App, from: 2, to: 1 }),
      message({ type: MessageType.Vote, from: 2, to: 1, term: 1_000, index: 1e6, logTerm: 1_000 }),
    ];
    for (const c of [peerClient(), peerClient("ledger-2", strangers)]) {
      try {
        expect((await send(c, 2n, attack))?.code).toBe(status.UNAVAILABLE);
      } finally {
        c.close();
      }
    }
    // A certificate of the cluster's CA that names an edge or an admin: the peer port closes the
    // connection before reading a call, and counts it.
    for (const name of ["edge-eu1", "admin-ops"]) {
      const before = await refusedCount("unauthenticated");
      const c = peerClient(name);
      try {
        expect((await send(c, 2n, attack))?.code).toBe(status.UNAVAILABLE);
      } finally {
        c.close();
      }
      expect(await refusedCount("unauthenticated")).toBeGreaterThan(before);
    }
    expect(cluster.nodes.get(1)!.proc!.exitCode).toBeNull();
  });

  it("serves no Peer calls on the client port, even to a member's certificate", async () => {
    const creds = credentials.createSsl(pem(certs, "ca"), pem(certs, "ledger-2-key"), pem(certs, "ledger-2"));
    const c = new PeerClient(cluster.address(1), creds);
    try {
      const e = await send(c, 2n, [message({ type: MessageType.Heartbeat, from: 2, to: 1, term: 1_000 })]);
      expect(e?.code).toBe(status.UNIMPLEMENTED);
    } finally {
      c.close();
    }
    // Status shows each member's two addresses, apart.
    const st = await admin.call("clusterStatus", {});
    expect(st.members).toHaveLength(3);
    for (const m of st.members) {
      expect(m.peerAddress).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(m.peerAddress).not.toBe(m.address);
    }
  });

  it("refuses a member speaking for another, per batch and per message", async () => {
    const c = peerClient("ledger-2");
    try {
      const asThree = await send(c, 3n, [
        message({ type: MessageType.Heartbeat, from: 3, to: 1, term: 1_000 }),
      ]);
      expect(asThree?.code).toBe(status.PERMISSION_DENIED);
      const inside = await send(c, 2n, [
        message({ type: MessageType.VoteResp, from: 3, to: 1, term: 1_000 }),
      ]);
      expect(inside?.code).toBe(status.PERMISSION_DENIED);
      expect(inside?.details).toMatch(/node 2 sent a VoteResp from node 3/);
    } finally {
      c.close();
    }
    expect(await refusedCount("sender-mismatch")).toBeGreaterThanOrEqual(2);
  });

  it("refuses a certificate of the CA for a node id that is no member", async () => {
    const before = await refusedCount("unauthenticated");
    const c = peerClient("ledger-9");
    try {
      const e = await send(c, 9n, [message({ type: MessageType.Heartbeat, from: 9, to: 1, term: 1_000 })]);
      expect(e?.code).toBe(status.UNAUTHENTICATED);
      expect(e?.details).toMatch(/node 9 is not a member node 1 knows/);
    } finally {
      c.close();
    }
    expect(await refusedCount("unauthenticated")).toBeGreaterThan(before);
  });

  it("drops a member's term-0 message and keeps running", async () => {
    // This cluster serves Raft on ports of their own: a member without its peer address is refused.
    const noPeer = await admin
      .call("addMember", { id: 9n, address: "127.0.0.1:1", asLearner: true, peerAddress: "" })
      .then(
        () => undefined,
        (e: ServiceError) => e,
      );
    expect(noPeer?.code).toBe(status.INVALID_ARGUMENT);
    expect(noPeer?.details).toMatch(/peer_address/);
    // Node 9 becomes a member (a learner that never starts): its certificate now speaks for one.
    await admin.call("addMember", {
      id: 9n,
      address: "127.0.0.1:1",
      asLearner: true,
      peerAddress: "127.0.0.1:1",
    });
    const c = peerClient("ledger-9");
    try {
      // Node 1 learns of the member when the entry commits there.
      const e = await until("node 1 to know member 9", async () => {
        const r = await send(c, 9n, [message({ type: MessageType.App, from: 9, to: 1 })]);
        return r?.code === status.UNAUTHENTICATED ? undefined : { r };
      });
      expect(e.r).toBeUndefined(); // Delivered: the core's own check refuses it.
    } finally {
      c.close();
      await admin.call("removeMember", { id: 9n });
    }
    await until("the core to count the term-0 message", async () =>
      (await refusedCount("no-term")) >= 1 ? true : undefined,
    );
    expect(cluster.nodes.get(1)!.proc!.exitCode).toBeNull();
    const g = await lease("tls-2");
    expect(g.end - g.start).toBe(100n);
  });

  it("refuses a snapshot from a stranger: the state stays", async () => {
    const c = peerClient("ledger-2", strangers);
    try {
      const md = new Metadata();
      md.set("dispenser-incarnation", "forged");
      const e = await new Promise<ServiceError | null>((r) => {
        const call = c.installSnapshot(md, (err) => r(err));
        const snap = message({
          type: MessageType.Snap,
          from: 2,
          to: 1,
          term: 1_000,
          snapshot: {
            meta: { index: 1e6, term: 1_000, confState: { voters: [2], learners: [] } },
            data: new Uint8Array(0),
          },
        });
        call.write({
          header: { clusterId: cluster.clusterId, message: toPbMessage(snap, false), dataSize: 0n },
        } satisfies SnapshotChunk);
        call.end();
      });
      expect(e?.code).toBe(status.UNAVAILABLE); // refused at the handshake
    } finally {
      c.close();
    }
    const info = await admin.call("getSequence", { name: "tls" });
    expect(info.sequence?.name).toBe("tls");
    const g = await lease("tls-3");
    expect(g.end - g.start).toBe(100n);
  });

  it("lets an edge lease, read and change the catalog, and only an admin change the membership", async () => {
    const as = (name?: string): LedgerClient =>
      new LedgerClient({
        endpoints: cluster.addresses(),
        totalTimeoutMs: 5_000,
        tls: {
          ca: pem(certs, "ca"),
          ...(name ? { cert: pem(certs, name), key: pem(certs, `${name}-key`) } : {}),
        },
      });
    const edge = as("edge-eu1");
    const nobody = as();
    const member = as("ledger-9");
    try {
      const r = await edge.call("leaseSegment", {
        sequence: "tls",
        dc: 0,
        size: 10n,
        requestId: "edge-1",
        kind: 0,
      });
      expect(r.grant!.end - r.grant!.start).toBe(10n);
      expect((await edge.call("getSequence", { name: "tls" })).sequence?.name).toBe("tls");
      const denied = [
        () => edge.call("addMember", { id: 7n, address: "127.0.0.1:1", asLearner: true, peerAddress: "" }),
        () => edge.call("removeMember", { id: 3n }),
        () => edge.call("transferLeader", { to: 2n }),
        () => member.call("createSequence", createRequest("by-a-member")),
      ];
      for (const call of denied)
        await expect(call()).rejects.toMatchObject({ code: status.PERMISSION_DENIED });
      // No certificate: refused at the handshake, nothing it sends is read.
      await expect(nobody.call("createSequence", createRequest("by-nobody"))).rejects.toMatchObject({
        code: status.UNAVAILABLE,
      });
      // Nothing of it happened.
      expect((await admin.call("getSequence", { name: "tls" })).sequence?.name).toBe("tls");
      await expect(admin.call("getSequence", { name: "by-nobody" })).rejects.toMatchObject({
        code: status.NOT_FOUND,
      });
      const st = await admin.call("clusterStatus", {});
      expect(st.members.map((m) => Number(m.id)).sort()).toEqual([1, 2, 3]);
    } finally {
      for (const c of [edge, nobody, member]) c.close();
    }
  });

  it("serves an edge that leases over TLS with its certificate, and an edge without one gets a clear error", async () => {
    const edgeTls = [
      "--ledger-tls-ca",
      join(certs, "ca.pem"),
      "--ledger-tls-cert",
      join(certs, "edge-eu1.pem"),
      "--ledger-tls-key",
      join(certs, "edge-eu1-key.pem"),
    ];
    const good = new EdgeProcess(cluster.addresses(), edgeTls);
    const plain = new EdgeProcess(cluster.addresses(), ["--draw-timeout-ms", "2000"]);
    let redis: Redis | undefined;
    try {
      // One after the other: a port picked free is free only until someone binds it.
      await good.init();
      await good.start();
      await plain.init();
      await plain.start();
      redis = new Redis({
        port: good.respPort,
        host: "127.0.0.1",
        lazyConnect: true,
        maxRetriesPerRequest: 1,
      });
      await redis.connect();
      const first = BigInt(String(await redis.call("GET", "tls")));
      const next = BigInt(String(await redis.call("GET", "tls")));
      // The edge changes the catalog with its own certificate (for its users; this one has none).
      expect(await redis.call("HSET", "via-edge", "type", "3")).toBe(1);
      expect(String(await redis.call("GET", "via-edge"))).toBe("1");
      expect(next).toBeGreaterThan(first);
      // The edge's own grants sit above the admin's: it leased from the same counter space.
      expect(first).toBeGreaterThan(granted);
      if (hasRedisCli) {
        // Not execFileSync: the peer proxies run in this process and must keep running.
        const { stdout: out } = await run("redis-cli", ["-p", String(plain.respPort), "GET", "tls"], {
          encoding: "utf8",
        });
        expect(out).toMatch(/^(UNAVAILABLE|ERR|TIMEOUT) /);
      }
    } finally {
      // Also when a start failed: no edge outlives the test.
      redis?.disconnect();
      await good.stop();
      await plain.stop();
    }
  }, 60_000);
});
