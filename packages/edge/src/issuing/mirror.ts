// A definition read back from the DC's Redis catalog mirror (`{seq:<name>}:def`), for an edge that
// starts inside a datacenter cut off from the ledger: it can then serve from the DC's reserve.
// The mirror holds what the edges wrote from the ledger's catalog; it is checked as the ledger
// would check a new definition, and a type 1 definition without its key fingerprint is refused
// (the edge could not tell whether its permutation secret is the sequence's).
import { normalizeSequenceDef } from "@dispenser/domain";
import { EdgeError } from "../errors.js";
import type { SequenceInfo } from "../ledger/ledger-port.js";
import type { MirroredDefinition } from "../redis/index.js";

const DECIMAL = /^\d{1,20}$/;

export function infoFromMirror(m: MirroredDefinition): SequenceInfo {
  const f = m.fields;
  const name = f["name"] ?? "";
  const bad = (why: string): EdgeError =>
    new EdgeError(
      "unavailable",
      `the ledger did not answer, and the DC's mirror of "${name}" is unusable: ${why}`,
    );
  const big = (k: string): bigint => {
    const v = f[k];
    if (v === undefined || !DECIMAL.test(v)) throw bad(`${k} is ${JSON.stringify(v)}`);
    return BigInt(v);
  };
  const type = Number(big("type"));
  const length = Number(big("length"));
  const keyFingerprint = f["key_fingerprint"];
  if (type === 1 && keyFingerprint === undefined)
    throw bad("a type 1 definition without its key fingerprint");
  const r = normalizeSequenceDef({
    name,
    type,
    ...(length > 0 ? { length } : {}),
    starting: big("starting"),
    step: big("step"),
    datacenters: Number(big("datacenters")),
    ...(f["layout"] !== undefined ? { layout: f["layout"] } : {}),
    ...(f["ordering"] !== undefined ? { ordering: f["ordering"] } : {}),
    ...(f["auto_disk"] !== undefined ? { autoDisk: f["auto_disk"] } : {}),
    limits: { maxSegmentSize: big("max_segment_size") },
    ...(keyFingerprint !== undefined ? { keyFingerprint } : {}),
    ...(f["reserve_seconds"] !== undefined ? { reserveSeconds: Number(big("reserve_seconds")) } : {}),
  });
  if (!r.ok) throw bad(r.errors.map((e) => e.reason).join("; "));
  return { def: r.def, revision: m.revision, createdAtMs: 0 };
}
