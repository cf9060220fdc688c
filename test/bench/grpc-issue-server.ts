// The gRPC baseline of bench:edge: a bare @grpc/grpc-js server with the edge's Dispenser service
// definition (same paths, same protobuf code), answering Issue with a counter and IssueBatch with a
// range cut from it. Nothing else: no ledger, no segments, no metrics. What the edge's gRPC figures
// are compared with.
//
//   node --import tsx test/bench/grpc-issue-server.ts --listen 127.0.0.1:0
// Prints "listening <port>" once bound; exits on SIGTERM/SIGINT.
import { parseArgs } from "node:util";
import type { IssueBatchRequest, IssueBatchResponse, IssueRequest, Id } from "@dispenser/proto";
import { DispenserService } from "@dispenser/proto";
import type { sendUnaryData, ServerUnaryCall, UntypedServiceImplementation } from "@grpc/grpc-js";
import { Server, ServerCredentials } from "@grpc/grpc-js";

const { values } = parseArgs({ options: { listen: { type: "string", default: "127.0.0.1:0" } } });

/** Largest IssueBatch count, as on the edge. */
const BATCH_COUNT_MAX = 10_000;

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
    if (!Number.isInteger(count) || count < 1 || count > BATCH_COUNT_MAX) {
      callback({ code: 3, details: `count must be 1..${BATCH_COUNT_MAX}` }, null);
      return;
    }
    const start = next;
    next += BigInt(count);
    callback(null, { ids: { $case: "range", value: { start, count: BigInt(count), step: 1n } } });
  },
};

// Channelz off, as on the edge's server: the baseline is the same library with the same options.
const server = new Server({ "grpc.enable_channelz": 0 });
server.addService(DispenserService, impl);
server.bindAsync(values.listen, ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    console.error(`grpc-issue-server: ${err.message}`);
    process.exit(1);
  }
  console.log(`listening ${port}`);
});
const stop = (): void => server.tryShutdown(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
