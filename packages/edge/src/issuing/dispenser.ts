// The edge's issuing core: one SequenceIssuer per sequence, definitions loaded from the ledger on
// first use, leases with request ids (a retried lease returns the first grant), and a clean close
// that hands unused tails back. Protocol layers (gRPC, RESP) call this and nothing below it.
import { randomUUID } from "node:crypto";
import { MAX_ISSUE_BATCH } from "@dispenser/proto";
import type { SequenceChanges, SequenceDef, SequenceSpec } from "@dispenser/domain";
import { EdgeError } from "../errors.js";
import type {
  LedgerPort,
  PageRequest,
  SegmentGrant,
  SequenceInfo,
  SequencePage,
} from "../ledger/ledger-port.js";
import type { SequenceSample } from "../metrics.js";
import type { IdMap } from "./id-map.js";
import { idMapFor } from "./id-map.js";
import type { DcReserve, ReserveSample } from "./dc-reserve.js";
import { infoFromMirror } from "./mirror.js";
import type { DcGuard, MirroredDefinition } from "../redis/index.js";
import type { Drawn, GrantFn } from "./sequence-issuer.js";
import type { EdgeJournal, JournalEntry } from "./journal.js";
import { SequenceIssuer } from "./sequence-issuer.js";
import { STRATEGIES } from "./strategy.js";
import { keyFingerprint } from "../ids/permutation.js";
import type { GuardRefusal } from "./grant-guard.js";
import { GrantGuard } from "./grant-guard.js";

export interface DispenserOptions {
  readonly ledger: LedgerPort;
  /** This edge's datacenter, 0..D-1 of every sequence it serves. */
  readonly dc: number;
  /** A name for this edge in logs and shared stats. Default: a random id. */
  readonly edgeId?: string;
  /** Sequences held at once. Default 10,000. */
  readonly maxSequences?: number;
  /** Draws of one sequence waiting for a segment at once. Default 10,000. */
  readonly maxWaitersPerSequence?: number;
  /** How long a draw may wait for a segment. Default 5,000 ms. */
  readonly drawTimeoutMs?: number;
  /** Mixed into type 1 permutation keys; every edge of a cluster must use the same. Default "". */
  readonly permutationSecret?: string;
  readonly now?: () => number;
  /** Keeps counts across restarts and accounts a crash's held segments as waste. */
  readonly journal?: EdgeJournal;
  /** How often the journal is written when something changed. Default 1,000 ms. */
  readonly checkpointMs?: number;
  /** Called when a draw waited for a segment, with the wait in seconds. */
  readonly onWaited?: (seconds: number) => void;
  /** Called for every lease (latency in seconds) and failed lease, for metrics and logs. */
  readonly onLease?: (name: string, seconds: number, g: SegmentGrant | EdgeError) => void;
  /** A type 1 sequence is bound to another permutation secret than this edge's: it is refused. */
  readonly onKeyMismatch?: (name: string, message: string) => void;
  /** A grant was refused: the ledger is another cluster, or granted below this edge's mark. */
  readonly onGrantRefused?: (name: string, reason: GuardRefusal, message: string) => void;
  /** The DC's reserve pool: segments of `edge`-ordered sequences are carved from it. */
  readonly reserve?: DcReserve;
  /** The DC's catalog mirror, read when the ledger does not answer a definition. */
  readonly mirror?: (name: string) => Promise<MirroredDefinition | undefined>;
  /** What the DC's edges remember of the ledger (in its Redis), read before a sequence's first lease. */
  readonly dcGuard?: (name: string, dc: number) => Promise<DcGuard | undefined>;
  /** The DC's edges remember another ledger identity than this edge. */
  readonly onGuardConflict?: (name: string, message: string) => void;
}

export interface ReturnReport {
  readonly name: string;
  readonly returned: bigint;
  readonly accepted: bigint;
  readonly wasted: bigint;
  readonly error?: string;
}

const DC_ORDERING_NEEDS_POOL =
  "ordering dc is served from the datacenter's reserve pool in its Redis Cluster: start the DC's edges with --redis (and --reserve-seconds not 0)";

/** What a protocol sees of a sequence this edge serves: its draws, the text of its ids, its counts. */
export interface ServedSequence {
  readonly def: SequenceDef;
  /** The catalog revision of the definition served. */
  readonly revision: bigint;
  /** The text of this sequence's ids, and the way back from an id. */
  readonly map: IdMap;
  /** One id: synchronous when the segment in hand has one (the hot path of GET and Issue). */
  issueOne(): bigint | Promise<bigint>;
  /** `count` ids (1..MAX_ISSUE_BATCH), a run when they form one. */
  draw(count: number): Drawn | Promise<Drawn>;
  readonly generated: bigint;
  readonly wasted: bigint;
  /** The last id issued here, if any. */
  readonly last: bigint | undefined;
  /** Ids in hand (current and prefetched segments). */
  readonly runway: bigint;
  readonly segmentSize: bigint;
}

/** A range leased for an SDK client's own buffer: ids start, start + step, ... (count of them). */
export interface LeasedRange {
  readonly range: { readonly start: bigint; readonly count: bigint; readonly step: bigint };
  /** The datacenter the ids belong to (0 for a global sequence). */
  readonly dc: number;
  readonly grant: SegmentGrant;
}

export class Dispenser {
  readonly dc: number;
  readonly edgeId: string;
  private readonly issuers = new Map<string, SequenceIssuer>();
  private readonly loading = new Map<string, Promise<SequenceIssuer>>();
  /** Sequences whose definition is being read again after a grant said it changed. */
  private readonly refreshing = new Set<string>();
  private readonly incarnation = randomUUID();
  private requestSeq = 0;
  private closing = false;
  /** Counts carried over from the previous process, applied when a sequence is first loaded. */
  private readonly carried = new Map<string, JournalEntry>();
  private checkpointTimer: NodeJS.Timeout | undefined;
  private readonly maxSequences: number;
  private readonly maxWaiters: number;
  readonly drawTimeoutMs: number;
  private readonly now: () => number;
  /** The fingerprint of this edge's permutation secret, bound to type 1 sequences by the ledger. */
  readonly keyFingerprint: string;
  /** What this edge remembers of the ledger, to refuse one that forgot (see grant-guard.ts). */
  readonly guard: GrantGuard;

  constructor(private readonly o: DispenserOptions) {
    this.dc = o.dc;
    this.keyFingerprint = keyFingerprint(o.permutationSecret ?? "");
    this.edgeId = o.edgeId ?? this.incarnation.slice(0, 8);
    this.maxSequences = o.maxSequences ?? 10_000;
    this.maxWaiters = o.maxWaitersPerSequence ?? 10_000;
    this.drawTimeoutMs = o.drawTimeoutMs ?? 5_000;
    this.now = o.now ?? Date.now;
    const loaded = o.journal?.load();
    this.guard = new GrantGuard(loaded?.guard, o.onGrantRefused);
    if (o.journal && loaded) {
      // Whatever the last process held above its checkpoint was never issued by anyone now.
      for (const [name, e] of loaded.sequences) {
        let lost = 0n;
        for (const s of e.held) lost += s.end - s.next;
        this.carried.set(name, { ...e, wasted: e.wasted + lost, held: [] });
      }
      o.journal.save(this.carried, this.guard.state);
      this.checkpointTimer = setInterval(() => this.checkpoint(), o.checkpointMs ?? 1_000);
      this.checkpointTimer.unref();
    }
  }

  /** Writes the journal: counts and held segments of every sequence. */
  checkpoint(): void {
    const j = this.o.journal;
    if (!j) return;
    const entries = new Map(this.carried);
    for (const [name, s] of this.issuers) {
      entries.set(name, { dc: this.dc, generated: s.generated, wasted: s.wasted, held: s.held() });
      this.guard.noteIssued(name, s.dc, s.issuedMark);
    }
    j.save(entries, this.guard.state);
  }

  get draining(): boolean {
    return this.closing;
  }

  /**
   * A sequence this edge serves, as the protocols see it: synchronous once loaded, else a promise
   * (loads the definition).
   */
  sequence(name: string): ServedSequence | Promise<ServedSequence> {
    return this.issuer(name);
  }

  /** The issuer of `name` itself (the edge's own parts and its tests; protocols use sequence()). */
  issuer(name: string): SequenceIssuer | Promise<SequenceIssuer> {
    const s = this.issuers.get(name);
    if (s !== undefined) return s;
    if (this.closing) throw new EdgeError("unavailable", "the edge is shutting down");
    let p = this.loading.get(name);
    if (p === undefined) {
      if (this.issuers.size + this.loading.size >= this.maxSequences) {
        throw new EdgeError("overloaded", `this edge already serves ${this.maxSequences} sequences`);
      }
      p = this.load(name).finally(() => this.loading.delete(name));
      this.loading.set(name, p);
    }
    return p;
  }

  /** `count` ids of `name`, 1..MAX_ISSUE_BATCH: a run when they form one (see SequenceIssuer.draw). */
  async drawBatch(name: string, count: number): Promise<{ drawn: Drawn; map: IdMap }> {
    if (!Number.isInteger(count) || count < 1 || count > MAX_ISSUE_BATCH) {
      throw new EdgeError("invalid-argument", `count must be 1..${MAX_ISSUE_BATCH}`, "count");
    }
    const s = await this.issuer(name);
    return { drawn: await s.draw(count), map: s.map };
  }

  /**
   * A range of counter values for an SDK client's own buffer, leased directly from the ledger:
   * every range is then above every earlier grant, so one client's ranges only grow (a cut from
   * this edge's buffer could lie below a range it got before).
   */
  async lease(name: string, count: bigint): Promise<LeasedRange> {
    const s = await this.issuer(name);
    const limit = s.def.limits.maxSegmentSize;
    if (count < 1n || (limit > 0n && count > limit)) {
      throw new EdgeError("invalid-argument", `count must be 1..${limit}`, "count");
    }
    if (s.def.type === 1)
      throw new EdgeError("failed-precondition", "type 1 ids are not a progression: use IssueBatch");
    if (s.def.ordering !== "edge")
      throw new EdgeError("failed-precondition", `a client buffer cannot keep ${s.def.ordering} ordering`);
    const g = await this.grantFn(s.def, this.dc)(count);
    s.generated += g.end - g.start;
    // The client issues the range itself: to the guard, all of it counts as issued.
    this.guard.noteIssued(name, this.dc, g.end);
    return {
      range: { start: s.map.idOf(g.start), count: g.end - g.start, step: s.map.stride ?? 1n },
      dc: this.dc,
      grant: g,
    };
  }

  /** Samples for metrics and INFO. */
  *samples(): Iterable<SequenceSample> {
    for (const [name, s] of this.issuers) {
      yield {
        name,
        runway: s.runway,
        size: s.segmentSize,
        generated: s.generated,
        wasted: s.wasted,
        leases: s.leases,
      };
    }
  }

  /** What this edge remembers of the ledger for a loaded sequence: for the DC's shared guard. */
  guardNote(name: string): { dc: number; identity: string; mark: bigint } | undefined {
    const s = this.issuers.get(name);
    if (!s) return undefined;
    const noted = this.guard.markOf(name, s.dc);
    const issued = s.issuedMark;
    return { dc: s.dc, identity: this.guard.state.identity ?? "", mark: issued > noted ? issued : noted };
  }

  /** The DC's reserve of a sequence as this edge saw it; "off" without a pool. */
  reserveOf(name: string): ReserveSample | "off" | undefined {
    return this.o.reserve ? this.o.reserve.sample(name) : "off";
  }

  /** The catalog revision of a loaded sequence's definition. */
  revisionOf(name: string): bigint | undefined {
    return this.issuers.get(name)?.revision;
  }

  /** A loaded sequence's definition as flat text fields (for the Redis catalog mirror). */
  definitionFields(name: string): Record<string, string> | undefined {
    const def = this.issuers.get(name)?.def;
    if (!def) return undefined;
    return {
      name: def.name,
      type: String(def.type),
      length: String(def.length ?? 0),
      starting: def.starting.toString(),
      step: def.step.toString(),
      datacenters: String(def.datacenters),
      layout: def.layout,
      ordering: def.ordering,
      auto_disk: def.autoDisk,
      max_segment_size: def.limits.maxSegmentSize.toString(),
      ...(def.keyFingerprint !== undefined ? { key_fingerprint: def.keyFingerprint } : {}),
      ...(def.reserveSeconds !== undefined ? { reserve_seconds: String(def.reserveSeconds) } : {}),
    };
  }

  /** Ordering `dc` is served from the DC's reserve pool: an edge without one refuses it. */
  private checkServable(ordering: string | undefined): void {
    if (ordering === "dc" && !this.o.reserve)
      throw new EdgeError("failed-precondition", DC_ORDERING_NEEDS_POOL, "ordering");
  }

  /** A type 1 sequence created here is bound to this edge's permutation secret at once. */
  async createSequence(spec: SequenceSpec): Promise<SequenceInfo> {
    this.checkServable(spec.ordering);
    if (spec.type === 1 && !spec.keyFingerprint) {
      return this.o.ledger.createSequence({ ...spec, keyFingerprint: this.keyFingerprint });
    }
    return this.o.ledger.createSequence(spec);
  }

  async describeSequence(name: string): Promise<SequenceInfo> {
    return this.o.ledger.getSequence(name);
  }

  listSequences(page: PageRequest = {}): Promise<SequencePage> {
    return this.o.ledger.listSequences(page);
  }

  /** Changes a definition on the ledger; this edge follows at once (others at their next lease). */
  async updateSequence(name: string, changes: SequenceChanges, expectedRevision = 0n): Promise<SequenceInfo> {
    this.checkServable(changes.ordering);
    const info = await this.o.ledger.updateSequence(name, changes, expectedRevision);
    await this.refresh(name);
    return info;
  }

  /** Resolves with the catalog's revision after the delete. */
  async deleteSequence(name: string, expectedRevision = 0n): Promise<bigint> {
    const revision = await this.o.ledger.deleteSequence(name, expectedRevision);
    this.evict(name, new EdgeError("not-found", `sequence "${name}" was deleted`));
    return revision;
  }

  /**
   * Stop issuing and hand unused tails back (strategies that return on close). Draws still
   * waiting are refused. Resolves with what happened per sequence; never throws.
   */
  async close(): Promise<ReturnReport[]> {
    this.closing = true;
    const reports: ReturnReport[] = [];
    const err = new EdgeError("unavailable", "the edge is shutting down");
    for (const s of this.issuers.values()) s.failWaiters(err);
    // A prefetch in flight becomes the top-most grant: it must be held before tails go back.
    await Promise.race([
      Promise.all([...this.issuers.values()].map((s) => s.settled())),
      new Promise((r) => setTimeout(r, this.drawTimeoutMs).unref()),
    ]);
    for (const [name, s] of this.issuers) {
      const strategy = STRATEGIES[s.def.autoDisk];
      const tails = s.tails();
      this.guard.noteIssued(name, s.dc, s.issuedMark);
      s.dropSegments();
      let returned = 0n;
      let accepted = 0n;
      let wasted = 0n;
      let error: string | undefined;
      for (const t of tails) {
        const n = t.end - t.start;
        returned += n;
        // A chunk carved from the DC's pool has no return token: it is never given back.
        if (!strategy.returnOnClose || t.grant.returnToken === "") {
          wasted += n;
          continue;
        }
        try {
          const r = await this.o.ledger.returnTail(name, s.dc, t, t.grant, this.requestId());
          if (r.accepted) accepted += n;
          else wasted += n;
        } catch (e) {
          wasted += n;
          error = e instanceof Error ? e.message : String(e);
        }
      }
      s.wasted += wasted;
      reports.push({ name, returned, accepted, wasted, ...(error ? { error } : {}) });
    }
    if (this.checkpointTimer) clearInterval(this.checkpointTimer);
    try {
      this.checkpoint();
    } catch {
      // A failed write must not stop a clean close: the counts are a courtesy, and the guard's
      // marks on disk stay as last written (lower, so weaker, never a false refusal).
    }
    this.o.ledger.close();
    return reports;
  }

  private requestId(): string {
    return `${this.incarnation}:${++this.requestSeq}`;
  }

  /**
   * The definition from the ledger; when the ledger does not answer, from the DC's catalog mirror
   * (an edge started inside a cut-off DC serves from its reserve).
   */
  private async definition(name: string): Promise<SequenceInfo> {
    try {
      return await this.o.ledger.getSequence(name);
    } catch (e) {
      const mirror = this.o.mirror;
      if (!mirror || !(e instanceof EdgeError) || (e.code !== "unavailable" && e.code !== "deadline"))
        throw e;
      const m = await mirror(name).catch(() => undefined);
      if (!m) throw e;
      return infoFromMirror(m);
    }
  }

  private async load(name: string): Promise<SequenceIssuer> {
    const info = await this.definition(name);
    const def = info.def;
    if (def.datacenters <= this.dc) {
      throw new EdgeError(
        "failed-precondition",
        `sequence "${name}" spans ${def.datacenters} datacenter(s); this edge is dc ${this.dc}`,
      );
    }
    this.checkKey(def);
    if (def.ordering === "dc" && !this.o.reserve?.serves(def))
      throw new EdgeError("failed-precondition", `sequence "${name}": ${DC_ORDERING_NEEDS_POOL}`);
    // Global ordering draws from one counter space (dc 0) so ids grow across the whole cluster.
    const dc = def.ordering === "global" ? 0 : this.dc;
    // This edge's own mark (its journal): its ids keep growing above it, whatever the pool holds.
    const ownFloor = this.guard.markOf(name, dc);
    // A fresh edge (no journal) learns what the DC's others issued before it asks the ledger.
    if (this.o.dcGuard && !this.issuers.has(name)) {
      const g = await this.o.dcGuard(name, dc).catch(() => undefined);
      const conflict = g && this.guard.adoptDc(name, dc, g.identity, g.mark);
      if (conflict) this.o.onGuardConflict?.(name, conflict);
    }
    const existing = this.issuers.get(name);
    if (existing) return existing;
    if (this.closing) throw new EdgeError("unavailable", "the edge is shutting down");
    const issuer: SequenceIssuer = new SequenceIssuer({
      info,
      dc,
      map: idMapFor(def, dc, this.o.permutationSecret ?? ""),
      strategy: STRATEGIES[def.autoDisk],
      grant: this.reserveOr(def, dc, ownFloor),
      now: this.now,
      maxWaiters: this.maxWaiters,
      maxDraw: MAX_ISSUE_BATCH,
      drawTimeoutMs: this.drawTimeoutMs,
      hooks: {
        ...(this.o.onWaited ? { onWaited: this.o.onWaited } : {}),
        onNewerRevision: () => void this.refresh(name),
      },
    });
    const carried = this.carried.get(name);
    if (carried) {
      issuer.generated = carried.generated;
      issuer.wasted = carried.wasted;
      this.carried.delete(name);
    }
    this.issuers.set(name, issuer);
    return issuer;
  }

  /**
   * Segments from the DC's reserve pool when there is one and the sequence can use it (ordering
   * `edge`, this edge's own DC), refilled from the ledger; else from the ledger directly.
   */
  private reserveOr(def: SequenceDef, dc: number, ownFloor: bigint): GrantFn {
    const direct = this.grantFn(def, dc);
    // A sequence whose reserve_seconds is 0 has no reserve here (and cannot be ordering dc).
    const reserve = this.o.reserve?.serves(def) ? this.o.reserve : undefined;
    if (reserve && def.ordering === "dc") return reserve.exactGrantFn(def, dc, direct);
    if (!reserve || def.ordering !== "edge" || dc !== this.dc) return direct;
    const name = def.name;
    // Not the guard's mark: it also counts SDK clients' ranges and the DC's other edges' ids,
    // which this edge's order does not need to stay above.
    return reserve.grantFn(def, dc, direct, () => {
      const live = this.issuers.get(name);
      const held = live && live.dc === dc ? live.heldTop : 0n;
      return held > ownFloor ? held : ownFloor;
    });
  }

  /** Leases of `def` in `dc`'s counter space, from the ledger (every strategy). */
  private grantFn(def: SequenceDef, dc: number): GrantFn {
    const name = def.name;
    return async (size) => {
      const t0 = this.now();
      // A ledger refused a moment ago is not asked again at every draw.
      this.guard.checkRecent(name, dc, t0);
      // Issued here so far: what the journal noted, and what the live issuer has issued since.
      const live = this.issuers.get(name);
      const issued = live && live.dc === dc ? live.issuedMark : 0n;
      const noted = this.guard.markOf(name, dc);
      const issuedAtAsk = issued > noted ? issued : noted;
      try {
        const fp = def.type === 1 ? this.keyFingerprint : undefined;
        const g = await this.o.ledger.lease(name, dc, size, this.requestId(), fp);
        this.guard.admit(
          name,
          dc,
          { start: g.start, end: g.end, identity: g.clusterIdentity },
          issuedAtAsk,
          this.now(),
        );
        this.o.onLease?.(name, (this.now() - t0) / 1000, g);
        return g;
      } catch (e) {
        const err = e instanceof EdgeError ? e : new EdgeError("internal", String(e));
        this.o.onLease?.(name, (this.now() - t0) / 1000, err);
        if (err.code === "not-found") this.evict(name, err);
        // A lease the definition allowed but the ledger refuses (a lowered segment limit, say):
        // the definition may have changed since it was loaded.
        else if (err.code === "invalid-argument" || err.code === "failed-precondition")
          void this.refresh(name);
        throw err;
      }
    };
  }

  /**
   * A grant said the definition of `name` changed (UpdateSequence on the ledger), or the ledger
   * refused a lease the loaded definition allowed: read the definition again.
   * If what the issuer depends on changed (ordering, strategy, segment limit), the issuer is
   * retired and the next draw loads the new definition; its unused ids are counted as waste,
   * never issued (they lie in ranges the ledger granted to this edge, so nothing repeats).
   */
  private async refresh(name: string): Promise<void> {
    if (this.refreshing.has(name)) return;
    this.refreshing.add(name);
    try {
      const s = this.issuers.get(name);
      if (!s) return;
      const info = await this.o.ledger.getSequence(name).catch(() => undefined);
      // Unreachable ledger: the next grant says it again. A deleted sequence: the next lease says so.
      if (!info || info.revision <= s.revision || this.issuers.get(name) !== s) return;
      const a = s.def;
      const b = info.def;
      if (
        a.ordering === b.ordering &&
        a.autoDisk === b.autoDisk &&
        a.limits.maxSegmentSize === b.limits.maxSegmentSize &&
        a.reserveSeconds === b.reserveSeconds &&
        (b.keyFingerprint === undefined || b.keyFingerprint === this.keyFingerprint)
      ) {
        s.revision = info.revision;
        return;
      }
      this.retire(name, s);
    } finally {
      this.refreshing.delete(name);
    }
  }

  /**
   * Type 1 ids are a keyed permutation: serving a sequence bound to another secret would map
   * counters onto ids other edges already issued. Refused, logged and counted, never served.
   */
  private checkKey(def: SequenceDef): void {
    if (def.type !== 1 || def.keyFingerprint === undefined || def.keyFingerprint === this.keyFingerprint)
      return;
    const message =
      `sequence "${def.name}" is bound to the permutation secret with fingerprint ${def.keyFingerprint}, ` +
      `but this edge's --permutation-secret has fingerprint ${this.keyFingerprint}: it would issue ` +
      `colliding ids, so it refuses to serve it (give every edge the same secret)`;
    this.o.onKeyMismatch?.(def.name, message);
    throw new EdgeError("failed-precondition", message);
  }

  /** Takes `s` out of service: counts carried to its successor, unused ids wasted, waiters told. */
  private retire(name: string, s: SequenceIssuer): void {
    this.guard.noteIssued(name, s.dc, s.issuedMark);
    for (const t of s.tails()) s.wasted += t.end - t.start;
    s.dropSegments();
    this.carried.set(name, { dc: this.dc, generated: s.generated, wasted: s.wasted, held: [] });
    this.evict(
      name,
      new EdgeError("unavailable", `the definition of "${name}" changed while the draw waited; retry`),
    );
  }

  private evict(name: string, why: EdgeError): void {
    const s = this.issuers.get(name);
    if (!s) return;
    this.guard.noteIssued(name, s.dc, s.issuedMark);
    this.issuers.delete(name);
    s.failWaiters(why);
  }
}
