// How the ledger's replicated state grows, measured on the state machine itself (in process, the
// same apply path every node runs): heap, snapshot size, the time to take a snapshot (on a node it
// is taken on the Raft loop) and to restore one (a restart or a new member). Two histories:
//   churn:  N sequences created and deleted (each leased once, so it keeps a mark);
//   leases: M leases spread over P (sequence, dc) pairs.
// Usage: pnpm bench:growth [--churn N] [--leases M] [--pairs P]
// Run with --expose-gc for heap figures after a collection (the script asks for it itself).
import { parseArgs } from "node:util";
import { encodeCommand, LedgerState, normalizeSequenceDef } from "@dispenser/ledger/state";

const { values } = parseArgs({
  options: {
    churn: { type: "string", default: "100000" },
    leases: { type: "string", default: "1000000" },
    pairs: { type: "string", default: "5000" },
  },
});
const churn = Number(values.churn);
const leases = Number(values.leases);
const pairs = Number(values.pairs);

const gc = (globalThis as { gc?: () => void }).gc;
function heapMb(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

let index = 0;
const at = () => ({ term: 1, index: ++index });
const token = (i: number) => i.toString(16).padStart(32, "0");

function must(s: LedgerState, bytes: Uint8Array): void {
  const r = s.applyBytes(bytes, at());
  if (!r.ok) throw new Error(r.message);
}

function def(name: string) {
  const d = normalizeSequenceDef({ name, type: 3, datacenters: 2 });
  if (!d.ok) throw new Error("bad definition");
  return d.def;
}

function measure(label: string, s: LedgerState, base: number, t0: number): void {
  const applied = (performance.now() - t0) / 1000;
  const heap = heapMb() - base;
  let t = performance.now();
  const snap = s.snapshot();
  const snapMs = performance.now() - t;
  t = performance.now();
  const back = LedgerState.restore(snap);
  const restoreMs = performance.now() - t;
  const c = back.counts;
  console.log(
    `${label}: applied in ${applied.toFixed(1)} s; state heap ${heap.toFixed(0)} MB; ` +
      `snapshot ${(snap.byteLength / 2 ** 20).toFixed(1)} MB in ${snapMs.toFixed(0)} ms; ` +
      `restore ${restoreMs.toFixed(0)} ms (${c.live} live, ${c.deleted} deleted names)`,
  );
}

if (!gc) console.log("(run with node --expose-gc for heap figures after a full collection)");

if (churn > 0) {
  const base = heapMb();
  const t0 = performance.now();
  const s = new LedgerState();
  for (let i = 0; i < churn; i++) {
    const name = `churn-${i}`;
    must(s, encodeCommand({ type: "CreateSequence", def: def(name), createdAtMs: 0 }));
    must(
      s,
      encodeCommand({
        type: "LeaseSegment",
        name,
        dc: i % 2,
        size: 1000n,
        requestId: `r${i}`,
        kind: "segment",
        returnToken: token(i),
      }),
    );
    must(s, encodeCommand({ type: "DeleteSequence", name }));
  }
  measure(`churn: ${churn} sequences created, leased once, deleted`, s, base, t0);
}

if (leases > 0) {
  const base = heapMb();
  const t0 = performance.now();
  const s = new LedgerState();
  const names = Math.ceil(pairs / 2);
  for (let i = 0; i < names; i++)
    must(s, encodeCommand({ type: "CreateSequence", def: def(`seq-${i}`), createdAtMs: 0 }));
  for (let i = 0; i < leases; i++) {
    const p = i % pairs;
    must(
      s,
      encodeCommand({
        type: "LeaseSegment",
        name: `seq-${p >> 1}`,
        dc: p & 1,
        size: 1000n,
        requestId: `edge-${p}:${i}`,
        kind: "segment",
        returnToken: token(i),
      }),
    );
  }
  measure(`leases: ${leases} leases over ${pairs} (sequence, dc) pairs`, s, base, t0);
}
