// A closed-loop gRPC load generator for bench:edge when h2load (a C client) is not installed: many
// concurrent unary calls of Issue or IssueBatch from one @grpc/grpc-js client. It saturates well
// below what h2load does (the client shares the machine with the server), so figures from it are
// lower bounds.
//
//   node --import tsx test/bench/grpc-load-client.ts --target 127.0.0.1:50051 --method Issue \
//     --concurrency 128 --duration 5 [--count 1000] [--warmup 1] [--ca ca.pem]
// Prints one JSON line: {"calls": n, "seconds": s, "errors": e, "firstError": "..."}.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { DispenserClient } from "@dispenser/proto";
import { credentials } from "@grpc/grpc-js";

const { values } = parseArgs({
  options: {
    target: { type: "string" },
    method: { type: "string", default: "Issue" },
    concurrency: { type: "string", default: "128" },
    duration: { type: "string", default: "5" },
    warmup: { type: "string", default: "1" },
    count: { type: "string", default: "1000" },
    sequence: { type: "string", default: "seq" },
    /** TLS to the server, trusting this CA certificate (PEM). */
    ca: { type: "string" },
  },
});
if (values.target === undefined) throw new Error("--target host:port is required");
const concurrency = Number(values.concurrency);
const durationMs = Number(values.duration) * 1000;
const warmupMs = Number(values.warmup) * 1000;
const count = Number(values.count);
const sequence = values.sequence;
const batch = values.method === "IssueBatch";

const client = new DispenserClient(
  values.target,
  values.ca !== undefined ? credentials.createSsl(readFileSync(values.ca)) : credentials.createInsecure(),
);

function call(): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null): void => (err ? reject(err) : resolve());
    if (batch) client.issueBatch({ sequence, count }, done);
    else client.issue({ sequence }, done);
  });
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const from = t0 + warmupMs;
  const to = from + durationMs;
  let calls = 0;
  let errors = 0;
  let firstError: string | undefined;
  const worker = async (): Promise<void> => {
    while (performance.now() < to) {
      try {
        await call();
        const t = performance.now();
        if (t > from && t <= to) calls++;
      } catch (e) {
        errors++;
        firstError ??= e instanceof Error ? e.message : String(e);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, () => worker()));
  client.close();
  console.log(JSON.stringify({ calls, seconds: durationMs / 1000, errors, firstError }));
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`grpc-load-client: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
