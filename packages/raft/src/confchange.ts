import { assert } from "./errors.js";
import type { ConfChange } from "./types.js";
import { ConfChangeType as CCT } from "./types.js";

// A conf change entry's data: 1 byte type, then the node id as a big-endian uint32 pair (53 bits).

export function encodeConfChange(cc: ConfChange): Uint8Array {
  assert(Number.isSafeInteger(cc.nodeId) && cc.nodeId > 0, () => `invalid node id ${cc.nodeId}`);
  const b = new Uint8Array(9);
  const v = new DataView(b.buffer);
  v.setUint8(0, cc.type);
  v.setUint32(1, Math.floor(cc.nodeId / 2 ** 32));
  v.setUint32(5, cc.nodeId >>> 0);
  return b;
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  if (data.byteLength !== 9) return { type: CCT.AddVoter, nodeId: 0 }; // Invalid: rejected by validation.
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const type = v.getUint8(0);
  const nodeId = v.getUint32(1) * 2 ** 32 + v.getUint32(5);
  if (type !== CCT.AddVoter && type !== CCT.AddLearner && type !== CCT.Remove && type !== CCT.PromoteLearner)
    return { type: CCT.AddVoter, nodeId: 0 };
  return { type, nodeId };
}
