import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { LedgerState, snapshotDocument } from "@dispenser/ledger/state";
import { EdgeJournal } from "../../src/issuing/journal.js";
import { EdgeError } from "../../src/errors.js";
import { Dispenser } from "../../src/issuing/dispenser.js";
import { idsOf } from "../../src/issuing/sequence-issuer.js";
import { StateLedgerPort } from "../support/state-ledger-port.js";
import { issueOne } from "../support/issue-one.js";

function setup(dc = 0) {
  const ledger = new StateLedgerPort();
  let now = 0;
  const d = new Dispenser({ ledger, dc, now: () => now, drawTimeoutMs: 200, maxWaitersPerSequence: 8 });
  return { ledger, d, advance: (ms: number) => (now += ms) };
}

async function draw(d: Dispenser, name: string, n: number): Promise<bigint[]> {
  const out: bigint[] = [];
  for (let i = 0; i < n; i++) out.push(await issueOne(d, name));
  return out;
}

describe("Dispenser", () => {
  it("issues increasing type 3 ids from leased segments and prefetches the next one", async () => {
    const { ledger, d } = setup();
    ledger.create({ name: "orders", type: 3, starting: 1000n, step: 2n });
    const ids = await draw(d, "orders", 2500);
    expect(ids[0]).toBe(1000n);
    for (let i = 1; i < ids.length; i++) expect(ids[i]! - ids[i - 1]!).toBe(2n);
    // Segments of 1,000: 3 drained or in use, and the next one leased before the current ran out.
    expect(ledger.leases.length).toBeGreaterThanOrEqual(3);
    const s = await d.issuer("orders");
    expect(s.runway).toBeGreaterThan(0n);
  });

  it("serves draws from the buffer synchronously at steady state", async () => {
    const { ledger, d } = setup();
    ledger.create({ name: "s", type: 3 });
    await issueOne(d, "s");
    await new Promise((r) => setImmediate(r));
    expect(typeof issueOne(d, "s")).toBe("bigint");
  });

  it("interleaves datacenters so ids of two DCs never collide and parse tells the DC", async () => {
    const a = setup(0);
    const ledger = a.ledger;
    ledger.create({ name: "u", type: 2, length: 6, datacenters: 3 });
    const b = new Dispenser({ ledger, dc: 2, drawTimeoutMs: 200 });
    const ia = await draw(a.d, "u", 1500);
    const ib = await draw(b, "u", 1500);
    const all = new Set([...ia, ...ib]);
    expect(all.size).toBe(3000);
    for (const id of ia) expect(String(id)).toHaveLength(6);
    const sb = await b.issuer("u");
    expect(sb.map.parse(ib[10]!)).toEqual({ dc: 2, counter: 10n });
    expect(() => sb.map.parse(99n)).toThrow(EdgeError);
  });

  it("answers a batch with exactly count ids across segments", async () => {
    const { ledger, d } = setup();
    ledger.create({ name: "b", type: 3 });
    const ids = idsOf((await d.drawBatch("b", 5000)).drawn);
    expect(ids).toHaveLength(5000);
    expect(new Set(ids).size).toBe(5000);
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true);
  });

  it("answers batches as runs when one segment holds them, waiting or not, in the order drawn", async () => {
    const { ledger, d } = setup();
    ledger.create({ name: "r", type: 3, starting: 10n, step: 2n });
    // All three wait for the first segment (1,000 ids): two fit in it, the third spans the next.
    const [a, b, c] = await Promise.all([
      d.drawBatch("r", 400),
      d.drawBatch("r", 400),
      d.drawBatch("r", 400),
    ]);
    expect(a.drawn).toEqual({ first: 10n, step: 2n, count: 400 });
    expect(b.drawn).toEqual({ first: 810n, step: 2n, count: 400 });
    expect(Array.isArray(c.drawn)).toBe(true);
    const d4 = await d.drawBatch("r", 100); // from the buffer
    expect(d4.drawn).toEqual({ first: 2410n, step: 2n, count: 100 });
    const all = [a, b, c, d4].flatMap((x) => idsOf(x.drawn));
    expect(all).toEqual(Array.from({ length: 1300 }, (_, i) => 10n + 2n * BigInt(i)));
    const s = await d.issuer("r");
    expect(s.generated).toBe(1300n);
    expect(s.last).toBe(10n + 2n * 1299n);
  });

  it("refuses bad counts and names and issues nothing", async () => {
    const { ledger, d } = setup();
    ledger.create({ name: "b", type: 3 });
    await expect(d.drawBatch("b", 0)).rejects.toMatchObject({ code: "invalid-argument" });
    await expect(d.drawBatch("b", 10_001)).rejects.toMatchObject({ code: "invalid-argument" });
    await expect(d.drawBatch("nope", 1)).rejects.toMatchObject({ code: "not-found" });
    expect(ledger.leases).toHaveLength(0);
    expect(await issueOne(d, "b")).toBe(1n);
  });

  it("type 2 exhaustion is an error, never a wrap, and a batch that does not fit takes nothing", async () => {
    const { ledger, d } = setup();
    ledger.create({ name: "t", type: 2, length: 2 }); // 10..99: 90 ids
    const first = await draw(d, "t", 85);
    expect(first[0]).toBe(10n);
    expect(first[84]).toBe(94n);
    await expect(d.drawBatch("t", 6)).rejects.toMatchObject({ code: "exhausted" });
    const rest = await draw(d, "t", 5);
    expect(rest).toEqual([95n, 96n, 97n, 98n, 99n]);
    await expect(Promise.resolve().then(() => issueOne(d, "t"))).rejects.toMatchObject({ code: "exhausted" });
  });

  it("type 1 ids are fixed-length, distinct, not in counter order, and parse back", async () => {
    const { ledger, d } = setup();
    ledger.create({ name: "r", type: 1, length: 4 }); // 9,000 ids
    const ids = await draw(d, "r", 9000);
    expect(new Set(ids).size).toBe(9000);
    for (const id of ids) expect(id >= 1000n && id <= 9999n).toBe(true);
    let ascending = 0;
    for (let i = 1; i < ids.length; i++) if (ids[i]! > ids[i - 1]!) ascending++;
    expect(ascending).toBeLessThan(9000 * 0.6);
    const s = await d.issuer("r");
    expect(s.map.parse(ids[123]!)).toEqual({ dc: 0, counter: 123n });
    await expect(Promise.resolve().then(() => issueOne(d, "r"))).rejects.toMatchObject({ code: "exhausted" });
  });

  it("keeps issuing from the buffer while the ledger is down, then fails draws clearly", async () => {
    const { ledger, d } = setup();
    ledger.create({ name: "o", type: 3 });
    await issueOne(d, "o");
    ledger.failLeases = new EdgeError("unavailable", "ledger unavailable: no leader");
    const s = await d.issuer("o");
    const buffered = Number(s.runway);
    const ids = await draw(d, "o", buffered);
    expect(new Set(ids).size).toBe(buffered);
    await expect(Promise.resolve().then(() => issueOne(d, "o"))).rejects.toMatchObject({
      code: "unavailable",
    });
    ledger.failLeases = undefined;
    expect(await issueOne(d, "o")).toBeGreaterThan(ids[ids.length - 1]!);
  });

  it("a draw whose deadline passes is issued nothing", async () => {
    const { ledger, d } = setup();
    ledger.create({ name: "w", type: 3 });
    let release!: () => void;
    ledger.hold = new Promise((r) => (release = r));
    await expect(Promise.resolve().then(() => issueOne(d, "w"))).rejects.toMatchObject({ code: "deadline" });
    ledger.hold = undefined;
    release();
    await new Promise((r) => setTimeout(r, 10));
    expect(await issueOne(d, "w")).toBe(1n);
  });

  it("bounds the draws waiting for a segment", async () => {
    const { ledger, d } = setup();
    ledger.create({ name: "q", type: 3 });
    await d.issuer("q");
    let release!: () => void;
    ledger.hold = new Promise((r) => (release = r));
    const waiting = Array.from({ length: 8 }, () => Promise.resolve(issueOne(d, "q")));
    expect(() => issueOne(d, "q")).toThrow(/waiting for a segment/);
    ledger.hold = undefined;
    release();
    const ids = await Promise.all(waiting);
    expect(ids).toEqual([1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n]);
  });

  it("global ordering leases exactly what the waiting draws need and keeps no buffer", async () => {
    const { ledger, d } = setup();
    ledger.create({ name: "g", type: 3, ordering: "global" });
    const a = await Promise.all([1, 2, 3].map(() => Promise.resolve(issueOne(d, "g"))));
    expect(new Set(a).size).toBe(3);
    const s = await d.issuer("g");
    expect(s.runway).toBe(0n);
    const b = await issueOne(d, "g");
    expect(b).toBeGreaterThan(a.reduce((x, y) => (x > y ? x : y)));
  });

  it("a clean close returns the top-most tail, so a restarted edge continues without waste", async () => {
    const { ledger, d } = setup();
    ledger.create({ name: "c", type: 3 });
    const before = await draw(d, "c", 300);
    const reports = await d.close();
    expect(reports[0]).toMatchObject({ name: "c", wasted: 0n });
    expect(reports[0]!.accepted).toBeGreaterThan(0n);
    const d2 = new Dispenser({ ledger, dc: 0 });
    expect(await issueOne(d2, "c")).toBe(before[before.length - 1]! + 1n);
  });

  it("a crash (no close) never leads to a repeat: the next edge leases above every grant", async () => {
    const { ledger, d } = setup();
    ledger.create({ name: "k", type: 3 });
    const before = await draw(d, "k", 1234);
    const d2 = new Dispenser({ ledger, dc: 0 });
    const after = await draw(d2, "k", 1000);
    const seen = new Set(before);
    for (const id of after) expect(seen.has(id)).toBe(false);
  });

  it("deleting a sequence stops its draws with not-found", async () => {
    const { ledger, d } = setup();
    ledger.create({ name: "x", type: 3 });
    await issueOne(d, "x");
    await d.deleteSequence("x");
    await expect(Promise.resolve().then(() => issueOne(d, "x"))).rejects.toMatchObject({ code: "not-found" });
  });

  it("follows a changed segment limit from the next grant on, and never repeats an id", async () => {
    const { ledger, d } = setup();
    ledger.create({ name: "lim", type: 3 });
    const before = await draw(d, "lim", 1500);
    const first = await d.issuer("lim");
    ledger.update("lim", { limits: { maxSegmentSize: 10n } });
    // The next lease (refused above the new limit, or granted with the new revision) makes the
    // edge read the definition and retire the issuer.
    const after = await draw(d, "lim", 1500);
    await new Promise((r) => setImmediate(r));
    const after2 = await draw(d, "lim", 100);
    const now = await d.issuer("lim");
    expect(now).not.toBe(first);
    expect(now.def.limits.maxSegmentSize).toBe(10n);
    expect(d.revisionOf("lim")).toBe(now.revision);
    // The old issuer asked for more than the new limit: refused, which sent the edge to read the
    // definition again; it did not keep asking.
    const refused = ledger.leases.filter((l) => l.grant === undefined).length;
    expect(refused).toBeLessThanOrEqual(3);
    const sizes = ledger.leases.slice(-5).map((l) => l.grant!.end - l.grant!.start);
    for (const n of sizes) expect(n).toBeLessThanOrEqual(10n);
    const all = [...before, ...after, ...after2];
    expect(new Set(all).size).toBe(all.length);
    for (let i = 1; i < all.length; i++) expect(all[i]! > all[i - 1]!).toBe(true);
    // Three new segments of 10 are the most one draw can count on: more is refused, not left
    // waiting for its deadline.
    expect(idsOf((await d.drawBatch("lim", 30)).drawn)).toHaveLength(30);
    await expect(d.drawBatch("lim", 31)).rejects.toThrow(
      /count 31 is more than one draw of "lim" can hold: 30/,
    );
    // The retired issuer's unused ids are waste, carried to its successor with its counts.
    expect(now.wasted).toBeGreaterThan(0n);
    expect(now.generated).toBeGreaterThanOrEqual(BigInt(all.length) - 10n);
  });

  it("switches to global ordering (one counter space, dc 0) after the change reaches it", async () => {
    const ledger = new StateLedgerPort();
    ledger.create({ name: "g", type: 2, length: 8, datacenters: 2 });
    const d = new Dispenser({ ledger, dc: 1, drawTimeoutMs: 200 });
    const early = await draw(d, "g", 10);
    expect((await d.issuer("g")).map.parse(early[0]!).dc).toBe(1);
    ledger.update("g", { ordering: "global" });
    const mid = await draw(d, "g", 2000);
    await new Promise((r) => setImmediate(r));
    const late = await draw(d, "g", 10);
    const s = await d.issuer("g");
    expect(s.def.ordering).toBe("global");
    for (const id of late) expect(s.map.parse(id).dc).toBe(0);
    const all = [...early, ...mid, ...late];
    expect(new Set(all).size).toBe(all.length);
  });

  it("keeps its issuer when a newer revision changed nothing it uses", async () => {
    const { ledger, d } = setup();
    ledger.create({ name: "same", type: 3 });
    await draw(d, "same", 10);
    const first = await d.issuer("same");
    const rev = first.revision;
    ledger.update("same", { limits: { maxSegmentSize: 10n } });
    ledger.update("same", { limits: { maxSegmentSize: first.def.limits.maxSegmentSize } });
    await draw(d, "same", 2500);
    await new Promise((r) => setImmediate(r));
    expect(await d.issuer("same")).toBe(first);
    expect(first.revision).toBeGreaterThan(rev);
  });

  it("segment size grows with a fast draw rate", async () => {
    const { ledger, d, advance } = setup();
    ledger.create({ name: "f", type: 3 });
    for (let i = 0; i < 6; i++) {
      await draw(d, "f", 1000);
      advance(10);
    }
    const s = await d.issuer("f");
    expect(s.segmentSize).toBeGreaterThan(1000n);
  });

  it("the journal carries counts across a restart and counts a crash's held ids as waste", async () => {
    const dir = mkdtempSync(join(tmpdir(), "edge-journal-"));
    try {
      const ledger = new StateLedgerPort();
      ledger.create({ name: "j", type: 3 });
      const a = new Dispenser({ ledger, dc: 0, journal: new EdgeJournal(dir) });
      await draw(a, "j", 250);
      await new Promise((r) => setImmediate(r));
      const held = (await a.issuer("j")).runway;
      a.checkpoint();
      // No close: the process "crashed". The next one counts what was held as waste.
      const b = new Dispenser({ ledger, dc: 0, journal: new EdgeJournal(dir) });
      const sb = await b.issuer("j");
      expect(sb.generated).toBe(250n);
      expect(sb.wasted).toBe(held);
      const granted = ledger.leases.reduce((n, l) => n + (l.grant ? l.grant.end - l.grant.start : 0n), 0n);
      expect(sb.generated + sb.wasted).toBe(granted);
      // A clean close leaves nothing to count as waste on the next start.
      await draw(b, "j", 10);
      await b.close();
      const c = new Dispenser({ ledger, dc: 0, journal: new EdgeJournal(dir) });
      const sc = await c.issuer("j");
      expect(sc.generated).toBe(260n);
      expect(sc.wasted).toBe(held);
      await c.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses grants from a ledger that forgot, across a restart of the edge (journal)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "edge-guard-"));
    try {
      const ledger = new StateLedgerPort();
      ledger.create({ name: "g", type: 3 });
      const refusals: string[] = [];
      let now = 0;
      const edge = (l: StateLedgerPort) =>
        new Dispenser({
          ledger: l,
          dc: 0,
          drawTimeoutMs: 200,
          now: () => now,
          journal: new EdgeJournal(dir),
          onGrantRefused: (name, reason) => refusals.push(`${name} ${reason}`),
        });
      const a = edge(ledger);
      const first = await draw(a, "g", 1500);
      a.checkpoint();
      // Killed (no close), and the ledger lost every volume: a fresh cluster, fresh identity.
      const fresh = new StateLedgerPort();
      fresh.create({ name: "g", type: 3 });
      const b = edge(fresh);
      await expect(issueOne(b, "g")).rejects.toThrow(
        /answered as cluster [0-9a-f]{32}, but this edge has drawn ids from cluster/,
      );
      expect(refusals).toEqual(["g identity"]);
      // Asked again at once, the edge does not lease (and burn a range) for nothing.
      const leases = fresh.leases.length;
      await expect(issueOne(b, "g")).rejects.toThrow(/answered as cluster/);
      expect(fresh.leases.length).toBe(leases);
      expect(refusals).toEqual(["g identity"]);
      await b.close();
      // The same cluster restored from an old backup: its identity, but its marks from before.
      const snapshot = snapshotDocument(ledger.state.snapshot());
      const backup = new StateLedgerPort(
        LedgerState.restore(new TextEncoder().encode(snapshot.replace(/"hwm":"\d+"/, '"hwm":"0"'))),
      );
      const c = edge(backup);
      await expect(issueOne(c, "g")).rejects.toThrow(
        /below 1500: this edge has already issued ids from counter 0 on/,
      );
      expect(refusals).toEqual(["g identity", "g below-mark"]);
      // The operator raises the mark above what was issued: grants are accepted again, above.
      backup.state.apply({ type: "RaiseMark", name: "g", dc: 0, to: 10_000n }, { term: 9, index: 2 });
      now += 1_000; // past the refusal's hold
      const next = await issueOne(c, "g");
      expect(next).toBeGreaterThan(first.at(-1)!);
      await c.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
