// The gRPC baseline of bench:edge and bench:ledger: a bare @grpc/grpc-js server with the edge's
// Dispenser service and the ledger's Ledger service definitions (same paths, same protobuf code),
// answering Issue with a counter, IssueBatch with a range cut from it, and LeaseSegment with the
// next range of the requested size. Nothing else: no Raft, no disk, no segments, no metrics. What
// the edge's gRPC figures and the ledger's lease figures are compared with: the most a grpc-js
// server can answer on the same machine.
//
//   node --import tsx test/bench/grpc-bare-server.ts --listen 127.0.0.1:0
// Prints "listening <port>" once bound; exits on SIGTERM/SIGINT.
import { parseArgs } from "node:util";
import type {
  Id,
  IssueBatchRequest,
  IssueBatchResponse,
  IssueRequest,
  LeaseSegmentRequest,
  LeaseSegmentResponse,
} from "@dispenser/proto";
import { DispenserService, LedgerService, SegmentKind } from "@dispenser/proto";
import type { sendUnaryData, ServerUnaryCall, UntypedServiceImplementation } from "@grpc/grpc-js";
import { Server, ServerCredentials } from "@grpc/grpc-js";

const { values } = parseArgs({ options: { listen: { type: "string", default: "127.0.0.1:0" } } });

/** Largest IssueBatch count, as on the edge. */
const MAX_BATCH_COUNT = 10_000;

let next = 1n;

const impl: UntypedServiceImplementation = {
  issue: (_call: ServerUnaryCall<IssueRequest, Id>, callback: sendUnaryData<Id>): void => {
    const id = next++;
    callback(null, { value: id, str: id.toString() });
  },
  issueBatch: (
    call: ServerUnaryCall<IssueBatchRequest, IssueBatchResponse>,
    callback: sendUnaryData<IssueBatchResponse>,
  ): void => {
    const count = call.request.count;
    if (!Number.isInteger(count) || count < 1 || count > MAX_BATCH_COUNT) {
      callback({ code: 3, details: `count must be 1..${MAX_BATCH_COUNT}` }, null);
      return;
    }
    const start = next;
    next += BigInt(count);
    callback(null, { ids: { $case: "range", value: { start, count: BigInt(count), step: 1n } } });
  },
};

let mark = 0n;

const ledger: UntypedServiceImplementation = {
  leaseSegment: (
    call: ServerUnaryCall<LeaseSegmentRequest, LeaseSegmentResponse>,
    callback: sendUnaryData<LeaseSegmentResponse>,
  ): void => {
    const r = call.request;
    const start = mark;
    mark += r.size;
    callback(null, {
      grant: {
        sequence: r.sequence,
        dc: r.dc,
        start,
        end: mark,
        fence: { term: 1n, index: mark },
        returnToken: "",
        kind: SegmentKind.SEGMENT_KIND_SEGMENT,
      },
      clusterIdentity: "",
      sequenceRevision: 1n,
    });
  },
};

// Channelz off, as on the edge's and the ledger's servers: the same library with the same options.
const server = new Server({ "grpc.enable_channelz": 0 });
server.addService(DispenserService, impl);
server.addService(LedgerService, ledger);
server.bindAsync(values.listen, ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    console.error(`grpc-bare-server: ${err.message}`);
    process.exit(1);
  }
  console.log(`listening ${port}`);
});
const stop = (): void => server.tryShutdown(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
