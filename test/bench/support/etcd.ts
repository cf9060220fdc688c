// Just enough of etcd's v3 gRPC API (KV/Put and Maintenance/Status) over @grpc/grpc-js, the same
// gRPC library the ledger client uses, so both sides pay the same client costs. Messages are
// written and read with the protobuf wire codec our generated code uses, field by field: no etcd
// package or .proto is needed for three messages.
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import type { ServiceError } from "@grpc/grpc-js";
import { Client, credentials, Metadata } from "@grpc/grpc-js";

export interface EtcdStatus {
  /** 64-bit ids: kept as bigint (as JS numbers they lose precision). */
  memberId: bigint;
  leader: bigint;
  raftTerm: bigint;
  raftIndex: bigint;
  appliedIndex: bigint;
}

type Fields = Map<number, bigint | Uint8Array>;

/** One message level: field number → its (last) value, varints as bigint, bytes as bytes. */
function fieldsOf(buf: Uint8Array): Fields {
  const out: Fields = new Map();
  const r = new BinaryReader(buf);
  while (r.pos < r.len) {
    const [no, type] = r.tag();
    if (type === WireType.Varint) out.set(no, BigInt(r.uint64()));
    else if (type === WireType.LengthDelimited) out.set(no, r.bytes());
    else r.skip(type);
  }
  return out;
}

const uintOf = (m: Fields, no: number): bigint => {
  const v = m.get(no);
  return typeof v === "bigint" ? v : 0n;
};
const subOf = (m: Fields, no: number): Fields => {
  const v = m.get(no);
  return v instanceof Uint8Array ? fieldsOf(v) : new Map<number, bigint | Uint8Array>();
};

const identity = (b: Buffer): Buffer => b;

export class EtcdKv {
  private readonly client: Client;

  constructor(
    readonly address: string,
    private readonly attemptMs = 3_000,
  ) {
    this.client = new Client(address, credentials.createInsecure(), {
      "grpc.enable_channelz": 0, // as the ledger's client: one library, the same options
      "grpc.initial_reconnect_backoff_ms": 100,
      "grpc.max_reconnect_backoff_ms": 1_000,
    });
  }

  private unary(method: string, req: Buffer, deadlineMs: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest<Buffer, Buffer>(
        method,
        identity,
        identity,
        req,
        new Metadata(),
        { deadline: Date.now() + deadlineMs },
        (err: ServiceError | null, res?: Buffer) => {
          if (err || !res) reject(err ?? new Error(`${method}: empty response`));
          else resolve(res);
        },
      );
    });
  }

  /** A PutRequest made once with `putRequest`; resolves with the raw response. */
  put(req: Buffer): Promise<Buffer> {
    return this.unary("/etcdserverpb.KV/Put", req, this.attemptMs);
  }

  /** StatusResponse: header (1) { member_id (2) }, leader (4), raftIndex (5), raftTerm (6), raftAppliedIndex (7). */
  async status(deadlineMs = 1_000): Promise<EtcdStatus> {
    const m = fieldsOf(await this.unary("/etcdserverpb.Maintenance/Status", Buffer.alloc(0), deadlineMs));
    return {
      memberId: uintOf(subOf(m, 1), 2),
      leader: uintOf(m, 4),
      raftIndex: uintOf(m, 5),
      raftTerm: uintOf(m, 6),
      appliedIndex: uintOf(m, 7),
    };
  }

  close(): void {
    this.client.close();
  }
}

/** PutRequest: key (1), value (2). */
export function putRequest(key: string, value: Uint8Array): Buffer {
  const w = new BinaryWriter();
  w.uint32((1 << 3) | WireType.LengthDelimited).bytes(Buffer.from(key));
  w.uint32((2 << 3) | WireType.LengthDelimited).bytes(value);
  return Buffer.from(w.finish());
}

/** raft_term (4) of a PutResponse's header (1). */
export function putResponseTerm(res: Uint8Array): bigint {
  return uintOf(subOf(fieldsOf(res), 1), 4);
}
