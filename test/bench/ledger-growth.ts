// How the ledger's replicated state grows, measured on the state machine itself (in process, the
// same apply path every node runs): heap and RSS, snapshot size, the time to write a snapshot and
// the longest slice of it (a node writes it in slices, its Raft loop running between them), the
// disk it takes in LevelDB, and a restart: open the data directory and restore. Two histories:
//   churn:  N sequences created and deleted (each leased once, so it keeps a mark);
//   leases: M leases spread over P (sequence, dc) pairs.
// Usage: pnpm bench:growth [--churn N] [--leases M] [--pairs P]
// Run with --expose-gc for heap figures after a collection (the script asks for it itself).
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { LevelStorage } from "@dispenser/ledger";
import { encodeCommand, LedgerState } from "@dispenser/ledger/state";
import { normalizeSequenceDef } from "@dispenser/domain";

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

/** A node writes a snapshot in slices of about 10 ms, looking at the clock every 8 names. */
const SLICE_MS = 10;
const SLICE_NAMES = 8;

async function measure(label: string, s: LedgerState, base: number, t0: number): Promise<void> {
  const applied = (performance.now() - t0) / 1000;
  const heap = heapMb() - base;
  const rss = process.memoryUsage().rss / 2 ** 20;
  let t = performance.now();
  const job = s.beginSnapshot();
  let longest = 0;
  for (let done = false; !done;) {
    const s0 = performance.now();
    do done = job.step(SLICE_NAMES);
    while (!done && performance.now() - s0 < SLICE_MS);
    longest = Math.max(longest, performance.now() - s0);
    // The Raft loop's turn between slices (a macrotask: a collection may run here too).
    await new Promise((r) => setImmediate(r));
  }
  const snap = job.result();
  const snapMs = performance.now() - t;
  // On disk: the snapshot as a node stores it (chunks in LevelDB), then a restart from it.
  const dir = mkdtempSync(join(tmpdir(), "growth-"));
  try {
    const id = { clusterId: "growth", nodeId: 1 };
    const st = await LevelStorage.open(dir, id);
    t = performance.now();
    await st.bootstrap(
      { meta: { index: 1, term: 1, confState: { voters: [1], learners: [] } }, data: snap },
      {
        term: 1,
        vote: 0,
        commit: 1,
      },
    );
    const writeMs = performance.now() - t;
    await st.close();
    const disk = execFileSync("du", ["-sm", dir], { encoding: "utf8" }).split("\t")[0];
    t = performance.now();
    const reopened = await LevelStorage.open(dir, id);
    const back = LedgerState.restore(reopened.snapshot().data);
    const restartMs = performance.now() - t;
    await reopened.close();
    const c = back.counts;
    console.log(
      `${label}: applied in ${applied.toFixed(1)} s; state heap ${heap.toFixed(0)} MB, RSS ${rss.toFixed(0)} MB; ` +
        `snapshot ${(snap.byteLength / 2 ** 20).toFixed(1)} MB written in ${snapMs.toFixed(0)} ms ` +
        `(longest slice ${longest.toFixed(1)} ms), stored in ${writeMs.toFixed(0)} ms, ${disk} MB on disk; ` +
        `restart (open + restore) ${restartMs.toFixed(0)} ms (${c.live} live, ${c.deleted} deleted names)`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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
  await measure(`churn: ${churn} sequences created, leased once, deleted`, s, base, t0);
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
  await measure(`leases: ${leases} leases over ${pairs} (sequence, dc) pairs`, s, base, t0);
}
