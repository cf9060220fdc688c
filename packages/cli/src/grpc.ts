// Promise wrappers over the generated gRPC clients, with a deadline per call and gRPC errors
// turned into CliErrors (one line, the right exit code).
import type {
  ClusterStatusResponse,
  CreateSequenceResponse,
  DeleteSequenceResponse,
  GetSequenceResponse,
  Id,
  InfoResponse,
  IssueBatchResponse,
  ListSequencesResponse,
  ParseResponse,
  SequenceDefinition,
  UpdateSequenceRequest,
  UpdateSequenceResponse,
} from "@dispenser/proto";
import { DispenserClient, LedgerClient } from "@dispenser/proto";
import type { CallOptions, ClientUnaryCall, ServiceError } from "@grpc/grpc-js";
import { Metadata, status } from "@grpc/grpc-js";
import type { TlsMaterial } from "@dispenser/plumbing";
import type { EdgeAccess } from "./credentials.js";
import { DEV_EDGE_ACCESS, ledgerChannel } from "./credentials.js";
import { CliError, EXIT } from "./errors.js";

type Callback<Res> = (e: ServiceError | null, r: Res) => void;
type Invoke<Res> = (md: Metadata, opts: Partial<CallOptions>, cb: Callback<Res>) => ClientUnaryCall;

function isServiceError(e: unknown): e is ServiceError {
  return typeof e === "object" && e !== null && "code" in e && typeof e.code === "number" && "details" in e;
}

/** A failed call as one line: what was called, where, and why, with the exit code it deserves. */
export function grpcError(e: unknown, what: string, address: string, timeoutMs: number): CliError {
  if (!isServiceError(e)) return new CliError(`${what} at ${address}: ${String(e)}`, EXIT.internal);
  if (e.code === status.UNAVAILABLE && /No connection established|ECONNREFUSED|connect/i.test(e.details)) {
    const why = /ECONNREFUSED/.test(e.details)
      ? "connection refused"
      : e.details.replace(/\.? ?Resolution note:.*$/, "");
    return new CliError(`cannot reach ${what} at ${address} (${why})`, EXIT.unavailable);
  }
  if (e.code === status.UNAVAILABLE)
    return new CliError(`${what} at ${address} is unavailable: ${e.details}`, EXIT.unavailable);
  if (e.code === status.DEADLINE_EXCEEDED)
    return new CliError(`${what} at ${address} did not answer within ${timeoutMs} ms`, EXIT.unavailable);
  const name = (status as unknown as Record<number, string>)[e.code] ?? String(e.code);
  return new CliError(`${e.details} (${name})`, EXIT.server);
}

function unary<Res>(invoke: Invoke<Res>, timeoutMs: number, md = new Metadata()): Promise<Res> {
  return new Promise((resolve, reject) => {
    invoke(md, { deadline: Date.now() + timeoutMs }, (e, r) => (e ? reject(e) : resolve(r)));
  });
}

/** The edge's Dispenser service at one address. */
export class EdgeApi {
  private readonly c: DispenserClient;

  constructor(
    readonly address: string,
    readonly timeoutMs: number,
    private readonly access: EdgeAccess = DEV_EDGE_ACCESS,
  ) {
    this.c = new DispenserClient(address, access.channel);
  }

  private run<Res>(invoke: Invoke<Res>): Promise<Res> {
    return unary(invoke, this.timeoutMs, this.access.metadata()).catch((e: unknown) => {
      throw grpcError(e, "the edge", this.address, this.timeoutMs);
    });
  }

  issue(sequence: string): Promise<Id> {
    return this.run((md, o, cb) => this.c.issue({ sequence }, md, o, cb));
  }
  issueBatch(sequence: string, count: number): Promise<IssueBatchResponse> {
    return this.run((md, o, cb) => this.c.issueBatch({ sequence, count }, md, o, cb));
  }
  parse(sequence: string, text: string): Promise<ParseResponse> {
    return this.run((md, o, cb) => this.c.parse({ sequence, id: { $case: "str", value: text } }, md, o, cb));
  }
  info(sequence: string): Promise<InfoResponse> {
    return this.run((md, o, cb) => this.c.info({ sequence }, md, o, cb));
  }
  create(sequence: SequenceDefinition): Promise<CreateSequenceResponse> {
    return this.run((md, o, cb) => this.c.createSequence({ sequence }, md, o, cb));
  }
  describe(name: string): Promise<GetSequenceResponse> {
    return this.run((md, o, cb) => this.c.describeSequence({ name }, md, o, cb));
  }
  list(pageToken: string): Promise<ListSequencesResponse> {
    return this.run((md, o, cb) => this.c.listSequences({ pageSize: 1000, pageToken }, md, o, cb));
  }
  update(req: UpdateSequenceRequest): Promise<UpdateSequenceResponse> {
    return this.run((md, o, cb) => this.c.updateSequence(req, md, o, cb));
  }
  delete(name: string): Promise<DeleteSequenceResponse> {
    return this.run((md, o, cb) => this.c.deleteSequence({ name, expectedRevision: 0n }, md, o, cb));
  }

  /** Every sequence, all pages. */
  async listAll(): Promise<SequenceDefinition[]> {
    const out: SequenceDefinition[] = [];
    let token = "";
    for (let page = 0; page < 10_000; page++) {
      const r = await this.list(token);
      out.push(...r.sequences);
      token = r.nextPageToken;
      if (token === "") break;
    }
    return out;
  }

  close(): void {
    this.c.close();
  }
}

/** ClusterStatus of one ledger node, as that node sees the cluster (no leader following). */
export async function ledgerStatus(
  address: string,
  timeoutMs: number,
  tls: TlsMaterial | undefined,
): Promise<ClusterStatusResponse> {
  const c = new LedgerClient(address, ledgerChannel(tls));
  try {
    return await unary<ClusterStatusResponse>((md, o, cb) => c.clusterStatus({}, md, o, cb), timeoutMs);
  } catch (e) {
    throw grpcError(e, "the ledger node", address, timeoutMs);
  } finally {
    c.close();
  }
}

/** Every id of an IssueBatch answer, in order. */
export function batchIds(r: IssueBatchResponse): bigint[] {
  if (r.ids?.$case === "range") {
    const { start, count, step } = r.ids.value;
    const out: bigint[] = [];
    for (let i = 0n; i < count; i++) out.push(start + i * step);
    return out;
  }
  return r.ids?.$case === "list" ? [...r.ids.value.values] : [];
}
