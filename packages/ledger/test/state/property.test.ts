// Randomized interleavings of every command against a small model, on seeded PRNGs (a failing seed
// replays exactly). Every command is applied twice: as a value to `state` and as encoded bytes to
// `replica`; both must answer the same and end byte-identical. `state` is also replaced by a
// restore of its own snapshot now and then. The central check: an id handed out is never handed
// out again while its holder still has it, across DCs, returns, deletes and re-creations.

import { describe, expect, test } from "vitest";
import type { Command, Fence, LeaseKind } from "../../src/state/commands.js";
import { encodeCommand } from "../../src/state/commands.js";
import type { Outcome, SnapshotJob } from "../../src/state/ledger-state.js";
import { LedgerState, snapshotDocument } from "../../src/state/ledger-state.js";
import type { Result } from "../../src/state/result.js";
import type { SequenceDef } from "@dispenser/domain";
import { capacity, idOf, slotOf } from "@dispenser/domain";
import { seqDef, tokenOf } from "./harness.js";
import { Prng } from "@dispenser/raft";

const VARIANTS: Record<string, { ok: SequenceDef[]; moved: SequenceDef }> = {
  p: {
    ok: [seqDef({ name: "p", type: 2, length: 2, datacenters: 2, limits: { maxSegmentSize: 20n } })],
    moved: seqDef({ name: "p", type: 2, length: 3, datacenters: 2 }),
  },
  q: {
    ok: [
      seqDef({ name: "q", type: 3, starting: 0n, step: 3n, datacenters: 3 }),
      seqDef({
        name: "q",
        type: 3,
        starting: 0n,
        step: 3n,
        datacenters: 3,
        ordering: "dc",
        autoDisk: "pre_close",
      }),
    ],
    moved: seqDef({ name: "q", type: 3, starting: 0n, step: 4n, datacenters: 3 }),
  },
  r: {
    ok: [seqDef({ name: "r", type: 1, length: 2, datacenters: 4 })],
    moved: seqDef({ name: "r", type: 1, length: 2, datacenters: 2 }),
  },
  s: {
    ok: [
      seqDef({ name: "s", type: 3, layout: "prefix", starting: (1n << 61n) - 40n, step: 1n, datacenters: 4 }),
    ],
    moved: seqDef({ name: "s", type: 3, layout: "prefix", starting: 0n, datacenters: 4 }),
  },
};
const NAMES = Object.keys(VARIANTS);

interface DcModel {
  hwm: bigint;
  top: { fence: Fence; start: bigint } | undefined;
}

interface SeqModel {
  live: boolean;
  identity: SequenceDef | undefined;
  limit: bigint;
  incarnation: number;
  dcs: Map<number, DcModel>;
  /** Ids (slots for type 1) currently held by someone, burnt ones included. */
  held: Set<bigint>;
}

interface Holder {
  readonly name: string;
  readonly dc: number;
  readonly requestId: string;
  readonly size: bigint;
  readonly kind: LeaseKind;
  readonly fence: Fence;
  /** The grant's return token, as the ledger answered it to the holder. */
  readonly token: string;
  readonly start: bigint;
  /** What the holder still has: [start, end). */
  end: bigint;
  /** The grant as the ledger remembers it: cut only by accepted returns (waste stays burnt). */
  grantEnd: bigint;
  readonly incarnation: number;
}

const sameFence = (a: Fence, b: Fence): boolean => a.term === b.term && a.index === b.index;
/** Snapshots as text: comparing strings is far cheaper than a deep equality over bytes. */
const snap = (s: LedgerState): string => snapshotDocument(s.snapshot());

function ids(def: SequenceDef, dc: number, start: bigint, end: bigint): bigint[] {
  const out: bigint[] = [];
  for (let c = start; c < end; c++) out.push(def.type === 1 ? slotOf(def, dc, c) : idOf(def, dc, c));
  return out;
}

function runSeed(seed: number, steps: number): { state: LedgerState; ops: Record<string, number> } {
  const rng = new Prng(seed);
  let state = new LedgerState();
  const replica = new LedgerState();
  let term = 1;
  let index = 0;
  let counter = 0;
  const ops: Record<string, number> = {};
  const model = new Map<string, SeqModel>(
    NAMES.map((n) => [
      n,
      { live: false, identity: undefined, limit: 0n, incarnation: 0, dcs: new Map(), held: new Set() },
    ]),
  );
  const holders: Holder[] = [];
  const returns: { cmd: Command; result: Result<Outcome>; incarnation: number }[] = [];

  const dcModel = (m: SeqModel, dc: number): DcModel => {
    let d = m.dcs.get(dc);
    if (!d) m.dcs.set(dc, (d = { hwm: 0n, top: undefined }));
    return d;
  };

  const apply = (cmd: Command): Result<Outcome> => {
    if (rng.chance(0.05)) term += 1;
    index += 1;
    const at = { term, index };
    const r = state.apply(cmd, at);
    expect(replica.applyBytes(encodeCommand(cmd), at), `seed ${seed} step ${index}: replica`).toEqual(r);
    return r;
  };

  const seq = (name: string): SeqModel => {
    const m = model.get(name);
    if (!m) throw new Error(name);
    return m;
  };

  // A snapshot of the replica written a few names per step while commands go on applying: when
  // done it must hold the replica's state of the step it began at (copy on write).
  let job: { job: SnapshotJob; expected: string; began: number } | undefined;
  let jobsDone = 0;

  for (let step = 0; step < steps; step++) {
    const where = `seed ${seed} step ${step}`;
    if (!job && rng.chance(0.05))
      job = { job: replica.beginSnapshot(), expected: snap(replica), began: step };
    if (job?.job.step(rng.intn(3) + 1)) {
      expect(snapshotDocument(job.job.result()), `${where}: snapshot begun at step ${job.began}`).toBe(
        job.expected,
      );
      job = undefined;
      jobsDone += 1;
    }
    const name = rng.pick(NAMES);
    const m = seq(name);
    const roll = rng.intn(100);
    const op =
      roll < 7
        ? "create"
        : roll < 11
          ? "delete"
          : roll < 14
            ? "update"
            : roll < 54
              ? "lease"
              : roll < 62
                ? "retry-lease"
                : roll < 87
                  ? "return"
                  : roll < 92
                    ? "retry-return"
                    : roll < 96
                      ? "garbage"
                      : "restore";
    ops[op] = (ops[op] ?? 0) + 1;

    switch (op) {
      case "create": {
        const moved = m.identity !== undefined && rng.chance(0.3);
        const def = moved ? VARIANTS[name]!.moved : rng.pick(VARIANTS[name]!.ok);
        const r = apply({ type: "CreateSequence", def, createdAtMs: step });
        if (m.live) expect(r, where).toMatchObject({ ok: false, code: "already-exists" });
        else if (moved) expect(r, where).toMatchObject({ ok: false, code: "failed-precondition" });
        else {
          expect(r, where).toMatchObject({ ok: true, data: { resumed: m.identity !== undefined } });
          Object.assign(m, {
            live: true,
            identity: def,
            limit: def.limits.maxSegmentSize,
            incarnation: m.incarnation + 1,
          });
        }
        break;
      }
      case "delete": {
        const r = apply({ type: "DeleteSequence", name });
        expect(r.ok, where).toBe(m.live);
        if (m.live) {
          m.live = false;
          for (const d of m.dcs.values()) d.top = undefined;
        }
        break;
      }
      case "update": {
        const r = apply({
          type: "UpdateSequence",
          name,
          changes: { ordering: rng.pick(["edge", "dc", "global"] as const) },
        });
        expect(r.ok, where).toBe(m.live);
        break;
      }
      case "lease": {
        const def = m.identity;
        const dc = def && rng.chance(0.03) ? def.datacenters : rng.intn(def?.datacenters ?? 2);
        const size = rng.chance(0.03) ? 0n : rng.chance(0.03) ? m.limit + 1n : BigInt(rng.range(1, 20));
        const kind = rng.chance(0.3) ? "window" : "segment";
        const requestId = `req-${++counter}`;
        const r = apply({
          type: "LeaseSegment",
          name,
          dc,
          size,
          requestId,
          kind,
          returnToken: tokenOf(requestId),
        });
        if (size === 0n) {
          expect(r, where).toMatchObject({ ok: false, code: "invalid-argument" }); // checked before any state
          break;
        }
        if (!m.live || !def) {
          expect(r, where).toMatchObject({ ok: false, code: "not-found" });
          break;
        }
        if (dc >= def.datacenters || size > m.limit) {
          expect(r, where).toMatchObject({ ok: false, code: "invalid-argument" });
          break;
        }
        const d = dcModel(m, dc);
        const cap = capacity(def, dc);
        if (d.hwm === cap) {
          expect(r, where).toMatchObject({ ok: false, code: "exhausted" });
          break;
        }
        if (!r.ok || r.data.type !== "LeaseSegment")
          throw new Error(`${where}: lease failed: ${JSON.stringify(r.ok || r)}`);
        const g = r.data.grant;
        const end = d.hwm + size < cap ? d.hwm + size : cap;
        expect([g.start, g.end, g.fence], where).toEqual([d.hwm, end, { term, index }]);
        for (const id of ids(def, dc, g.start, g.end)) {
          if (m.held.has(id)) throw new Error(`${where}: id ${id} of "${name}" handed out twice`);
          m.held.add(id);
        }
        d.hwm = g.end;
        d.top = { fence: g.fence, start: g.start };
        holders.push({
          name,
          dc,
          requestId,
          size,
          kind,
          fence: g.fence,
          token: g.returnToken,
          start: g.start,
          end: g.end,
          grantEnd: g.end,
          incarnation: m.incarnation,
        });
        break;
      }
      case "retry-lease": {
        const picked = holders.length > 0 ? rng.pick(holders) : undefined;
        if (!picked) break;
        // A request id retried after a re-creation may have been granted again since: the latest counts.
        const h = holders.findLast(
          (x) => x.name === picked.name && x.dc === picked.dc && x.requestId === picked.requestId,
        )!;
        const hm = seq(h.name);
        const before = snap(state);
        const r = apply({
          type: "LeaseSegment",
          name: h.name,
          dc: h.dc,
          size: h.size,
          requestId: h.requestId,
          kind: h.kind,
          // A retry is proposed with a fresh token; a replay answers the first grant's.
          returnToken: tokenOf(`${h.requestId}#retry`),
        });
        if (!hm.live) expect(r, where).toMatchObject({ ok: false, code: "not-found" });
        else if (h.incarnation === hm.incarnation) {
          if (h.grantEnd === h.start)
            expect(r, where).toMatchObject({ ok: false, code: "failed-precondition" });
          else {
            expect(r, where).toMatchObject({
              ok: true,
              data: { replayed: true, grant: { start: h.start, end: h.grantEnd, fence: h.fence } },
            });
          }
          expect(snap(state), where).toBe(before);
        } else if (r.ok && r.data.type === "LeaseSegment") {
          // Forgotten by the deletion: a fresh grant, which the model takes like any other lease.
          const def = hm.identity!;
          const g = r.data.grant;
          for (const id of ids(def, h.dc, g.start, g.end)) {
            if (hm.held.has(id)) throw new Error(`${where}: id ${id} of "${h.name}" handed out twice`);
            hm.held.add(id);
          }
          const d = dcModel(hm, h.dc);
          expect(g.start, where).toBe(d.hwm);
          d.hwm = g.end;
          d.top = { fence: g.fence, start: g.start };
          holders.push({
            ...h,
            fence: g.fence,
            token: g.returnToken,
            start: g.start,
            end: g.end,
            grantEnd: g.end,
            incarnation: hm.incarnation,
          });
        } else expect(r, where).toMatchObject({ ok: false, code: "exhausted" });
        break;
      }
      case "return": {
        const live = holders.filter((h) => h.end > h.start);
        const h = live.length > 0 ? rng.pick(live) : undefined;
        if (!h) break;
        const hm = seq(h.name);
        // Now and then a buggy edge reaches below its own grant, into ranges others hold.
        const overreach = h.start > 0n && rng.chance(0.05);
        const cut = overreach ? rng.below(h.start) : h.start + rng.below(h.end - h.start);
        const wrongFence = rng.chance(0.1);
        const fence = wrongFence ? { term: h.fence.term, index: h.fence.index + 1 } : h.fence;
        // Now and then a stranger tries with the public fence and a guessed token.
        const stranger = !wrongFence && rng.chance(0.05);
        const cmd: Command = {
          type: "ReturnSegment",
          name: h.name,
          dc: h.dc,
          start: cut,
          end: h.end,
          fence,
          returnToken: stranger ? "0".repeat(32) : h.token,
          requestId: `ret-${++counter}`,
        };
        const before = snap(state);
        const r = apply(cmd);
        if (!hm.live) {
          expect(r, where).toMatchObject({ ok: false, code: "not-found" });
          break; // the holder keeps its range and may try again later
        }
        // A grant of an earlier incarnation of the name was forgotten with its deletion: no one can
        // prove they hold it any more, so it is never taken back (its ids stay below the kept marks).
        // An overreach below its own grant is refused too: a holder can only give back its own ids.
        if (wrongFence || stranger || overreach || h.incarnation !== hm.incarnation) {
          // Not the grant's holder (another grant's fence, or no token): refused, nothing changes.
          expect(r, where).toMatchObject({ ok: false, code: "failed-precondition" });
          expect(snap(state), where).toEqual(before);
          break;
        }
        const d = dcModel(hm, h.dc);
        if (d.top !== undefined && d.top.start === d.hwm && !sameFence(d.top.fence, fence)) {
          // The top grant came back whole: the grant with this fence, if it ends at the mark, is
          // the top-most one now.
          const below = holders.find(
            (x) =>
              x.name === h.name &&
              x.dc === h.dc &&
              x.incarnation === hm.incarnation &&
              sameFence(x.fence, fence) &&
              x.grantEnd === d.hwm,
          );
          if (below) d.top = { fence: below.fence, start: below.start };
        }
        const accepted =
          d.top !== undefined && sameFence(d.top.fence, fence) && h.end === d.hwm && cut >= d.top.start;
        expect(r, where).toMatchObject({ ok: true, data: { accepted, hwm: accepted ? cut : d.hwm } });
        if (accepted) {
          for (const id of ids(hm.identity!, h.dc, cut, h.end)) hm.held.delete(id);
          d.hwm = cut;
          h.grantEnd = cut;
        }
        h.end = cut > h.start ? cut : h.start; // returned either way: taken back, or burnt
        returns.push({ cmd, result: r, incarnation: hm.incarnation });
        break;
      }
      case "retry-return": {
        const prev = returns.length > 0 ? rng.pick(returns) : undefined;
        if (!prev || prev.cmd.type !== "ReturnSegment") break;
        const pm = seq(prev.cmd.name);
        if (!pm.live || pm.incarnation !== prev.incarnation) break; // forgotten with the deletion
        const before = snap(state);
        const r = apply(prev.cmd);
        if (!prev.result.ok || prev.result.data.type !== "ReturnSegment") throw new Error("unexpected");
        expect(r, where).toMatchObject({
          ok: true,
          data: { replayed: true, accepted: prev.result.data.accepted },
        });
        expect(snap(state), where).toBe(before);
        break;
      }
      case "garbage": {
        const before = snap(state);
        index += 1;
        const bytes = rng.bytes(rng.intn(40));
        const r = state.applyBytes(bytes, { term, index });
        expect(r.ok, where).toBe(false);
        expect(replica.applyBytes(bytes, { term, index }), where).toEqual(r);
        expect(snap(state), where).toBe(before);
        break;
      }
      case "restore": {
        const bytes = state.snapshot();
        state = LedgerState.restore(bytes);
        expect(snap(state), where).toBe(snapshotDocument(bytes));
        break;
      }
    }

    // The marks match the model: they only moved where a lease or an accepted return moved them.
    for (const [n, sm] of model) {
      for (const [dc, d] of sm.dcs)
        expect(state.dcInfo(n, dc)?.hwm ?? 0n, `${where}: ${n}/${dc}`).toBe(d.hwm);
    }
  }
  expect(snap(replica), `seed ${seed}: replica snapshot`).toBe(snap(state));
  ops["snapshot-jobs"] = jobsDone;
  return { state, ops };
}

describe("random interleavings of lease, return, delete and re-create (seeded)", () => {
  test.each(Array.from({ length: 24 }, (_, i) => i + 1))(
    "seed %i: no id is handed out twice; replicas agree",
    (seed) => {
      const { ops } = runSeed(seed, 700);
      expect(ops["lease"]).toBeGreaterThan(100);
      expect(ops["snapshot-jobs"]).toBeGreaterThan(3);
    },
  );

  test("the same seed gives the same bytes", () => {
    expect(snap(runSeed(99, 400).state)).toBe(snap(runSeed(99, 400).state));
  });

  test("the runs reach exhaustion, accepted returns, waste and re-creation", () => {
    let exhausted = 0;
    let returned = 0n;
    let waste = 0n;
    let deleted = 0;
    for (let seed = 1; seed <= 6; seed++) {
      const { state } = runSeed(seed, 700);
      for (const n of NAMES) {
        for (const info of state.dcInfos(n)) {
          if (info.remaining === 0n) exhausted++;
          returned += info.stats.returned;
          waste += info.stats.waste;
        }
      }
      deleted += state.counts.deleted;
    }
    expect(exhausted).toBeGreaterThan(0);
    expect(returned).toBeGreaterThan(0n);
    expect(waste).toBeGreaterThan(0n);
    expect(deleted).toBeGreaterThanOrEqual(0);
  });
});
