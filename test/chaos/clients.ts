// The clients: per DC, closed loops drawing over RESP (ioredis), gRPC (grpc-js on our protos) and
// the SDK from that DC's edges, on one sequence of each ordering, a small fixed-length one that
// runs out during the run, and a type 1 one. Every draw goes to the history.
import type { Dispenser } from "@dispenser/client";
import { createDispenser, isDispenserError } from "@dispenser/client";
import { DispenserClient } from "@dispenser/proto";
import type { ServiceError } from "@grpc/grpc-js";
import { credentials, Metadata, status } from "@grpc/grpc-js";
import type { Ordering } from "./checkers.js";
import type { DrawStart, History } from "./history.js";
import type { DcEdge, ThreeDcs } from "../support/three-dc.js";

export interface ChaosSequence {
  readonly name: string;
  readonly ordering: Ordering;
  /** The RESP HSET fields that create it. */
  readonly fields: readonly string[];
  /** Its id range, for a fixed-length type. */
  readonly range?: readonly [bigint, bigint];
}

export const SEQUENCES: readonly ChaosSequence[] = [
  { name: "c_edge", ordering: "edge", fields: ["type", "3", "datacenters", "3", "ordering", "edge"] },
  { name: "c_dc", ordering: "dc", fields: ["type", "3", "datacenters", "3", "ordering", "dc"] },
  { name: "c_global", ordering: "global", fields: ["type", "3", "datacenters", "3", "ordering", "global"] },
  // 900 ids over three DCs: runs out within the first minute at this load.
  {
    name: "c_fixed",
    ordering: "edge",
    fields: ["type", "2", "length", "3", "starting", "100", "datacenters", "3"],
    range: [100n, 999n],
  },
  { name: "c_rand", ordering: "none", fields: ["type", "1", "length", "9", "datacenters", "3"] },
];

const CALL_TIMEOUT_MS = 2_000;
/** Pause between one worker's draws: bounds the load on two cores. */
const PAUSE_MS = 40;

/** A draw's failure as a short, stable code. */
function errorCode(e: unknown): string {
  if (isDispenserError(e)) return e.code;
  const se = e as Partial<ServiceError>;
  if (typeof se.code === "number") {
    if (se.code === status.RESOURCE_EXHAUSTED && /exhaust/i.test(se.details ?? "")) return "exhausted";
    return (status as unknown as Record<number, string>)[se.code] ?? String(se.code);
  }
  const m = e instanceof Error ? e.message : String(e);
  if (/exhaust/i.test(m)) return "exhausted";
  return m.split(/[\s:]/)[0] || "error";
}

export class Clients {
  private stopping = false;
  private readonly loops: Promise<void>[] = [];
  private readonly closers: (() => unknown)[] = [];

  constructor(
    private readonly dcs: ThreeDcs,
    private readonly history: History,
  ) {}

  start(): void {
    for (let dc = 0; dc < 3; dc++) {
      const edges = this.dcs.edgesOf(dc);
      let n = 0;
      for (const s of SEQUENCES) {
        for (const via of s.ordering === "none"
          ? ["grpc"]
          : s.name === "c_fixed"
            ? ["resp"]
            : ["resp", "grpc", "sdk"]) {
          const edge = edges[n++ % edges.length]!;
          this.loops.push(this.worker(dc, s, via, edge, edges));
        }
      }
    }
  }

  private async worker(
    dc: number,
    s: ChaosSequence,
    via: string,
    edge: DcEdge,
    edges: readonly DcEdge[],
  ): Promise<void> {
    const edgeName = `dc${dc}:${edge.process.grpcPort}`;
    let draw: () => Promise<bigint>;
    let issuer = edgeName;
    if (via === "resp") {
      draw = async () => BigInt(String(await edge.client.call("GET", s.name)));
    } else if (via === "grpc") {
      const c = new DispenserClient(edge.process.grpcAddress, credentials.createInsecure(), {
        "grpc.initial_reconnect_backoff_ms": 100,
        "grpc.max_reconnect_backoff_ms": 1_000,
      });
      this.closers.push(() => c.close());
      draw = () =>
        new Promise((resolve, reject) =>
          c.issue({ sequence: s.name }, new Metadata(), { deadline: Date.now() + CALL_TIMEOUT_MS }, (e, r) =>
            e ? reject(e) : resolve(r.value),
          ),
        );
    } else {
      // Buffered for `edge` (its ids grow within this client), direct for `dc` and `global`.
      const d: Dispenser = createDispenser({
        endpoints: edges.map((e) => e.process.grpcAddress),
        sequence: s.name,
        mode: s.ordering === "edge" ? "buffered" : "direct",
        callTimeoutMs: CALL_TIMEOUT_MS,
        drawTimeoutMs: CALL_TIMEOUT_MS,
      });
      this.closers.push(() => d.close());
      draw = () => d.next();
      if (s.ordering === "edge") issuer = `sdk:dc${dc}:${s.name}`;
    }
    const start: DrawStart = { sequence: s.name, ordering: s.ordering, dc, issuer, via };
    while (!this.stopping) {
      const op = this.history.invoke(start);
      try {
        const id = await withTimeout(draw(), CALL_TIMEOUT_MS + 500);
        this.history.ok(op, id);
      } catch (e) {
        this.history.fail(op, errorCode(e));
      }
      await new Promise((r) => setTimeout(r, PAUSE_MS));
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
    await Promise.all(this.closers.map((c) => Promise.resolve(c())));
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => (t = setTimeout(() => reject(new Error("timeout")), ms))),
  ]).finally(() => clearTimeout(t));
}
