// The generated code keeps 64-bit values exact (bigint, never a lossy number), and its grpc-js
// service definitions and clients work against a real server on loopback.
import type { ServiceError } from "@grpc/grpc-js";
import { credentials, Metadata, Server, ServerCredentials, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LedgerServer, MessageFns, PeerServer } from "../src/index.js";
import {
  AutoDisk,
  ClusterStatusRequest,
  ClusterStatusResponse,
  ErrorReason,
  IssueBatchResponse,
  Id,
  LeaseSegmentResponse,
  LedgerClient,
  ListSequencesRequest,
  LedgerService,
  LEADER_METADATA_KEY,
  Layout,
  MAX_SNAPSHOT_CHUNK_BYTES,
  MemberRole,
  MemberState,
  MessageBatch,
  Ordering,
  ParseRequest,
  PbEntryType,
  PbMessageType,
  PeerClient,
  PeerService,
  ProgressState,
  SegmentKind,
  SequenceDefinition,
  SequenceType,
  SnapshotChunk,
  errorDetailOf,
  leaderOf,
  statusError,
} from "../src/index.js";

const TWO_63 = 2n ** 63n;
const MAX_U64 = 2n ** 64n - 1n;
/** Around 2^63; all but 2^63 itself would round to a neighbour as a JS number (a double). */
const NEAR_2_63 = [TWO_63 - 1n, TWO_63, TWO_63 + 1n, TWO_63 + 12_345n, MAX_U64];

function roundtrip<T>(fns: MessageFns<T>, message: T): T {
  return fns.decode(fns.encode(message).finish());
}

describe("bigint fields survive encode/decode", () => {
  it("makes the test values ones a JS number would round", () => {
    for (const v of NEAR_2_63) if (v !== TWO_63) expect(BigInt(Number(v))).not.toBe(v);
  });

  it("raft: MessageBatch with entries and a snapshot", () => {
    const [a = 0n, b = 0n, c = 0n, d = 0n, e = 0n] = NEAR_2_63;
    const batch = MessageBatch.fromPartial({
      clusterId: "c-1",
      from: a,
      to: e,
      messages: [
        {
          type: PbMessageType.MESSAGE_TYPE_APP,
          from: a,
          to: e,
          term: b,
          logTerm: c,
          index: d,
          commit: c,
          rejectHint: d,
          context: e,
          entries: [
            { term: b, index: d + 1n, type: PbEntryType.ENTRY_TYPE_NORMAL, data: new Uint8Array([1, 2, 3]) },
            { term: b, index: d + 2n, type: PbEntryType.ENTRY_TYPE_CONF_CHANGE, data: new Uint8Array() },
          ],
        },
        {
          type: PbMessageType.MESSAGE_TYPE_SNAP,
          from: a,
          to: e,
          term: b,
          snapshot: {
            meta: { index: d, term: b, confState: { voters: [a, b, c], learners: [e] } },
            data: new Uint8Array([9]),
          },
        },
      ],
    });
    const back = roundtrip(MessageBatch, batch);
    expect(back).toEqual(batch);
    expect(back.messages[0]?.context).toBe(MAX_U64);
    expect(back.messages[1]?.snapshot?.meta?.confState?.voters).toEqual([a, b, c]);
    expect(typeof back.from).toBe("bigint");
  });

  it("raft: SnapshotChunk header and data chunks", () => {
    const header = SnapshotChunk.fromPartial({
      header: {
        clusterId: "c-1",
        dataSize: TWO_63 + 1n,
        message: { type: PbMessageType.MESSAGE_TYPE_SNAP, snapshot: { meta: { index: TWO_63 } } },
      },
    });
    const back = roundtrip(SnapshotChunk, header);
    expect(back).toEqual(header);
    expect(back.data).toBeUndefined();
    const bytes = new Uint8Array(MAX_SNAPSHOT_CHUNK_BYTES).map((_, i) => i % 251);
    const backData = roundtrip(SnapshotChunk, SnapshotChunk.fromPartial({ data: bytes }));
    expect(backData.header).toBeUndefined();
    // (toEqual on a 1 MiB array takes seconds; compare the bytes directly.)
    expect(Buffer.compare(backData.data ?? new Uint8Array(), bytes)).toBe(0);
  });

  it("ledger: LeaseSegmentResponse and SequenceDefinition", () => {
    const lease = LeaseSegmentResponse.fromPartial({
      grant: {
        sequence: "orders",
        dc: 3,
        start: TWO_63 - 1n,
        end: TWO_63 + 999n,
        fence: { term: TWO_63 + 1n, index: MAX_U64 },
        kind: SegmentKind.SEGMENT_KIND_WINDOW,
      },
      sequenceRevision: TWO_63 + 5n,
    });
    const back = roundtrip(LeaseSegmentResponse, lease);
    expect(back).toEqual(lease);
    expect((back.grant?.end ?? 0n) - (back.grant?.start ?? 0n)).toBe(1000n);

    const def = SequenceDefinition.fromPartial({
      name: "orders",
      type: SequenceType.SEQUENCE_TYPE_INCREASING,
      starting: TWO_63 + 1n,
      step: TWO_63 - 1n,
      datacenters: 4,
      layout: Layout.LAYOUT_PREFIX,
      ordering: Ordering.ORDERING_GLOBAL,
      autoDisk: AutoDisk.AUTO_DISK_ELEGANT_CLOSE,
      limits: { maxSegmentSize: MAX_U64 },
      revision: TWO_63,
      createdAtMs: 1_767_225_600_000n,
    });
    expect(roundtrip(SequenceDefinition, def)).toEqual(def);
    // JSON carries uint64 as decimal strings, and reads them back exactly.
    const json = SequenceDefinition.toJSON(def) as Record<string, unknown>;
    expect(json["starting"]).toBe("9223372036854775809");
    expect(SequenceDefinition.fromJSON(JSON.parse(JSON.stringify(json)))).toEqual(def);
  });

  it("edge: Id, IssueBatchResponse (range and list) and ParseRequest", () => {
    const id = Id.fromPartial({ value: TWO_63 + 1n, str: (TWO_63 + 1n).toString() });
    expect(roundtrip(Id, id)).toEqual(id);
    const range = IssueBatchResponse.fromPartial({
      ids: { $case: "range", value: { start: TWO_63 - 1n, count: 1000n, step: TWO_63 } },
    });
    expect(roundtrip(IssueBatchResponse, range)).toEqual(range);
    const list = IssueBatchResponse.fromPartial({ ids: { $case: "list", value: { values: NEAR_2_63 } } });
    const back = roundtrip(IssueBatchResponse, list);
    expect(back.ids?.$case === "list" ? back.ids.value.values : []).toEqual(NEAR_2_63);
    const parse = ParseRequest.fromPartial({ sequence: "orders", id: { $case: "value", value: MAX_U64 } });
    expect(roundtrip(ParseRequest, parse)).toEqual(parse);
  });

  it("refuses to encode a value above 2^64 - 1 instead of wrapping it", () => {
    expect(() => Id.encode({ value: MAX_U64 + 1n, str: "" })).toThrow(/too large/);
  });
});

describe("grpc-js on loopback", () => {
  const server = new Server();
  let address = "";
  const status_ = ClusterStatusResponse.fromPartial({
    clusterId: "test-cluster",
    leaderId: TWO_63 + 7n,
    leaderAddress: "127.0.0.1:1",
    nodeId: TWO_63 + 7n,
    term: TWO_63 - 1n,
    commit: MAX_U64,
    applied: MAX_U64 - 1n,
    lastIndex: MAX_U64,
    members: [
      {
        id: TWO_63 + 7n,
        address: "127.0.0.1:1",
        role: MemberRole.MEMBER_ROLE_VOTER,
        state: MemberState.MEMBER_STATE_LEADER,
        self: true,
        term: TWO_63 - 1n,
        commit: MAX_U64,
        applied: MAX_U64 - 1n,
        match: MAX_U64,
      },
      {
        id: 2n,
        address: "127.0.0.1:2",
        role: MemberRole.MEMBER_ROLE_LEARNER,
        state: MemberState.MEMBER_STATE_FOLLOWER,
        match: TWO_63,
        lag: TWO_63 - 1n,
        progress: ProgressState.PROGRESS_STATE_SNAPSHOT,
      },
    ],
  });
  let snapshotBytes = 0;

  beforeAll(async () => {
    const ledger: Pick<LedgerServer, "clusterStatus" | "getSequence"> = {
      clusterStatus: (call, callback) => {
        expect(call.request).toEqual(ClusterStatusRequest.create());
        callback(null, status_);
      },
      getSequence: (_call, callback) => {
        callback(
          statusError(status.FAILED_PRECONDITION, "not leader", {
            reason: ErrorReason.ERROR_REASON_NOT_LEADER,
            leaderId: TWO_63 + 7n,
            leaderAddress: "127.0.0.1:1",
          }),
        );
      },
    };
    const peer: Pick<PeerServer, "installSnapshot"> = {
      installSnapshot: (call, callback) => {
        let sawHeader = false;
        call.on("data", (chunk: SnapshotChunk) => {
          if (chunk.header) sawHeader = chunk.header.dataSize === 3n * 1024n * 1024n;
          else if (sawHeader && chunk.data) snapshotBytes += chunk.data.byteLength;
        });
        call.on("end", () => callback(null, {}));
      },
    };
    // Services missing a method answer it with UNIMPLEMENTED.
    server.addService(LedgerService, ledger);
    server.addService(PeerService, peer);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    address = `127.0.0.1:${port}`;
  });

  afterAll(() => {
    server.forceShutdown();
  });

  function deadline(): Date {
    return new Date(Date.now() + 5_000);
  }

  it("serves Ledger.ClusterStatus to the generated client, bigints intact", async () => {
    const client = new LedgerClient(address, credentials.createInsecure());
    try {
      const got = await new Promise<ClusterStatusResponse>((resolve, reject) =>
        client.clusterStatus({}, new Metadata(), { deadline: deadline() }, (err, res) =>
          err ? reject(err) : resolve(res),
        ),
      );
      expect(got).toEqual(status_);
      expect(got.commit).toBe(MAX_U64);
      expect(got.members[1]?.match).toBe(TWO_63);
    } finally {
      client.close();
    }
  });

  it("carries 'not leader' as FAILED_PRECONDITION with the leader in the trailers", async () => {
    const client = new LedgerClient(address, credentials.createInsecure());
    try {
      const err = await new Promise<ServiceError>((resolve, reject) =>
        client.getSequence({ name: "x" }, new Metadata(), { deadline: deadline() }, (e) =>
          e ? resolve(e) : reject(new Error("expected an error")),
        ),
      );
      expect(err.code).toBe(status.FAILED_PRECONDITION);
      expect(err.metadata.get(LEADER_METADATA_KEY)).toEqual(["127.0.0.1:1"]);
      expect(leaderOf(err)).toEqual({ address: "127.0.0.1:1", id: TWO_63 + 7n });
      expect(errorDetailOf(err)?.reason).toBe(ErrorReason.ERROR_REASON_NOT_LEADER);

      const missing = await new Promise<ServiceError>((resolve, reject) =>
        client.listSequences(ListSequencesRequest.create(), new Metadata(), { deadline: deadline() }, (e) =>
          e ? resolve(e) : reject(new Error("expected an error")),
        ),
      );
      expect(missing.code).toBe(status.UNIMPLEMENTED);
      expect(leaderOf(missing)).toBeUndefined();
    } finally {
      client.close();
    }
  });

  it("streams Peer.InstallSnapshot in chunks of at most 1 MiB", async () => {
    const client = new PeerClient(address, credentials.createInsecure());
    try {
      await new Promise<void>((resolve, reject) => {
        const stream = client.installSnapshot(new Metadata(), { deadline: deadline() }, (err) =>
          err ? reject(err) : resolve(),
        );
        stream.write(
          SnapshotChunk.fromPartial({ header: { clusterId: "test-cluster", dataSize: 3n * 1024n * 1024n } }),
        );
        for (let i = 0; i < 3; i++) {
          stream.write(SnapshotChunk.fromPartial({ data: new Uint8Array(MAX_SNAPSHOT_CHUNK_BYTES) }));
        }
        stream.end();
      });
      expect(snapshotBytes).toBe(3 * MAX_SNAPSHOT_CHUNK_BYTES);
    } finally {
      client.close();
    }
  });
});
