// The replicated state machine the simulator runs: a counter that allocates disjoint ranges, the
// same job the segment ledger does. Commands and snapshots are small fixed binary records.

export interface AllocCommand {
  /** Unique per client request, so an applied entry can be matched to the request that proposed it. */
  readonly requestId: number;
  readonly size: number;
}

export interface Grant {
  readonly requestId: number;
  readonly start: number;
  /** Exclusive. */
  readonly end: number;
}

export function encodeAlloc(c: AllocCommand): Uint8Array {
  const b = new Uint8Array(12);
  const v = new DataView(b.buffer);
  v.setUint8(0, 0x41); // 'A'
  v.setUint32(4, c.requestId);
  v.setUint32(8, c.size);
  return b;
}

export function decodeAlloc(data: Uint8Array): AllocCommand | undefined {
  if (data.byteLength !== 12 || data[0] !== 0x41) return undefined;
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return { requestId: v.getUint32(4), size: v.getUint32(8) };
}

export class Allocator {
  /** The allocation mark: everything below it has been granted. Never decreases. */
  mark = 0;

  apply(data: Uint8Array): Grant | undefined {
    const c = decodeAlloc(data);
    if (!c) return undefined;
    const g = { requestId: c.requestId, start: this.mark, end: this.mark + c.size };
    this.mark = g.end;
    return g;
  }

  snapshot(): Uint8Array {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, this.mark);
    return b;
  }

  static restore(data: Uint8Array): Allocator {
    const a = new Allocator();
    if (data.byteLength === 8) a.mark = new DataView(data.buffer, data.byteOffset, 8).getFloat64(0);
    return a;
  }
}
