// The segment ledger's replicated state machine: the sequence catalog and, per (sequence, dc), the
// marks of everything granted. Every node applies the same committed commands in the same order and
// must end in the same state, so nothing here reads a clock, draws randomness or iterates in an
// order that depends on anything but the commands. A failed command changes nothing.
//
// Deleted names keep a tombstone forever: the definition and one mark per DC, nothing else, so
// re-creating the name resumes above the old marks and no id is ever issued twice. Live names are
// bounded by MAX_SEQUENCES, tombstones by MAX_DELETED_NAMES (a delete beyond it is refused).

import type { Command, CommandType, Fence } from "./commands.js";
import { decodeCommand, defFromJson, defToJson, IDENTITY_PATTERN, validateCommand } from "./commands.js";
import type { DcStats, GrantRecord, WindowRecord } from "./dc-ledger.js";
import { DcLedger } from "./dc-ledger.js";
import type { Json } from "./json.js";
import {
  bigJson,
  canonicalJson,
  DecodeError,
  parseJson,
  readArray,
  readBigint,
  readBool,
  readInt,
  readObject,
  readString,
  utf8,
} from "./json.js";
import type { Failure, Result } from "./result.js";
import { fail, ok } from "./result.js";
import type { SequenceDef } from "@dispenser/domain";
import { describeErrors, identityDiff, validateSequenceDef } from "@dispenser/domain";
import { capacity } from "@dispenser/domain";
import { lowerBound, SortedNames } from "./sorted-names.js";

export const MAX_SEQUENCES = 100_000;
export const MAX_DELETED_NAMES = 1_000_000;
/** (sequence, dc) pairs released one by one during a restore hold; ReleaseRestore ends it. */
const MAX_RELEASED = 1_000_000;
const holdKey = (name: string, dc: number): string => `${name}/${dc}`;
export const MAX_LIST_LIMIT = 1000;
/**
 * 3: a header frame, then one frame per name (format 2's items), so no snapshot is one string
 * (V8 caps a string at 512 MiB) and one can be written a slice at a time. 2: grants carry their
 * return token. Formats 1 and 2 (one JSON document) still load.
 */
export const SNAPSHOT_FORMAT = 3;
const LOADABLE_SNAPSHOT_FORMATS = new Set([1, 2, SNAPSHOT_FORMAT]);
/** Leads a framed snapshot; a JSON one starts with "{". "DLS" and the format. */
const FRAMED_MAGIC = Buffer.from([0x44, 0x4c, 0x53, SNAPSHOT_FORMAT]);
/** A snapshot is written into chunks of this size (a frame larger than it gets a chunk of its own). */
const SNAPSHOT_CHUNK_BYTES = 1 << 20;

export interface SequenceRecord {
  readonly def: SequenceDef;
  readonly createdAtMs: number;
  /** Catalog revision of the (re-)creation, and of the last change. */
  readonly createRevision: bigint;
  readonly modRevision: bigint;
}

export interface Grant extends GrantRecord {
  readonly name: string;
  readonly dc: number;
}

export interface CreateOutcome {
  readonly type: "CreateSequence";
  readonly sequence: SequenceRecord;
  readonly revision: bigint;
  /** The name had been deleted: its marks were kept and leasing resumes above them. */
  readonly resumed: boolean;
  readonly message: string;
}

export interface UpdateOutcome {
  readonly type: "UpdateSequence";
  readonly sequence: SequenceRecord;
  readonly revision: bigint;
  /** False when every value was already in place: the revision did not move. */
  readonly changed: boolean;
}

export interface DeleteOutcome {
  readonly type: "DeleteSequence";
  readonly name: string;
  readonly revision: bigint;
}

export interface LeaseOutcome {
  readonly type: "LeaseSegment";
  readonly grant: Grant;
  /** A retry of an earlier request: the earlier grant, unchanged (or trimmed by an accepted return). */
  readonly replayed: boolean;
  /** Shorter than the requested size: the DC's space ran out. */
  readonly capped: boolean;
}

export interface ReturnOutcome {
  readonly type: "ReturnSegment";
  readonly name: string;
  readonly dc: number;
  /** Taken back (hwm lowered); otherwise recorded as waste. */
  readonly accepted: boolean;
  readonly replayed: boolean;
  readonly message: string;
  readonly hwm: bigint;
}

export interface InitOutcome {
  readonly type: "InitCluster";
  /** The cluster's identity: the first one committed. */
  readonly identity: string;
  /** False when an identity was already in place (this command changed nothing). */
  readonly changed: boolean;
}

export interface RaiseOutcome {
  readonly type: "RaiseMark";
  readonly name: string;
  readonly dc: number;
  readonly hwm: bigint;
  /** False when the mark was already at or above `to`. */
  readonly raised: boolean;
}

export interface ReleaseOutcome {
  readonly type: "ReleaseRestore";
  /** False when the state was not on hold. */
  readonly held: boolean;
}

export interface OutcomeByType {
  readonly ReleaseRestore: ReleaseOutcome;
  readonly InitCluster: InitOutcome;
  readonly RaiseMark: RaiseOutcome;
  readonly CreateSequence: CreateOutcome;
  readonly UpdateSequence: UpdateOutcome;
  readonly DeleteSequence: DeleteOutcome;
  readonly LeaseSegment: LeaseOutcome;
  readonly ReturnSegment: ReturnOutcome;
}
export type Outcome = OutcomeByType[CommandType];

export interface DcInfo {
  readonly dc: number;
  readonly hwm: bigint;
  readonly capacity: bigint;
  readonly remaining: bigint;
  readonly top: GrantRecord | undefined;
  readonly stats: DcStats;
}

export interface ListPage {
  readonly sequences: readonly SequenceRecord[];
  readonly revision: bigint;
  /** Pass as `after` for the next page; undefined when the listing is complete. */
  readonly next: string | undefined;
}

interface Entry {
  def: SequenceDef;
  createdAtMs: number;
  createRevision: bigint;
  modRevision: bigint;
  deleted: boolean;
  readonly dcs: Map<number, DcLedger>;
}

const label = (name: string, dc: number): string => `sequence "${name}" dc ${dc}`;

function freezeDef(def: SequenceDef): SequenceDef {
  return Object.freeze({ ...def, limits: Object.freeze({ ...def.limits }) });
}

function checkAt(at: Fence): void {
  if (!Number.isSafeInteger(at.term) || !Number.isSafeInteger(at.index) || at.term < 0 || at.index < 0) {
    throw new RangeError(
      `entry position term ${at.term} index ${at.index} is not a pair of non-negative integers`,
    );
  }
}

export class LedgerState {
  private rev = 0n;
  private id = "";
  /**
   * Set while a cluster restored from a backup is on hold: ids issued after the backup are unknown
   * to it, so a (sequence, dc) leases nothing until an operator raised (or confirmed) its mark;
   * the keys ("name/dc") released so far. Undefined when not on hold.
   */
  private released: Set<string> | undefined;
  /**
   * Live names as objects; a deleted name as its snapshot item (canonical JSON of its definition
   * and marks), read back only when it is re-created, raised or looked at. As objects, a million
   * tombstones took 1.5 GB of heap and full collections of 1.5 s (measured, `pnpm bench:growth`).
   */
  private readonly entries = new Map<string, Entry | string>();
  /** All names, live and deleted, sorted by UTF-16 code units (names are ASCII). Bounded by the two caps. */
  private readonly names = new SortedNames();
  private liveCount = 0;
  /** Snapshots being written while commands apply (see beginSnapshot). */
  private readonly jobs = new Set<StateSnapshotJob>();

  /** Puts a restored state on hold (restoreDataDir): see `released`. */
  holdAfterRestore(): void {
    this.released = new Set();
  }

  /** Whether the state is on hold after a restore. */
  get onHold(): boolean {
    return this.released !== undefined;
  }

  /** The cluster's identity, created once by its first leader; "" before. */
  get identity(): string {
    return this.id;
  }

  /** The catalog revision: bumped by every successful catalog change. */
  get revision(): bigint {
    return this.rev;
  }

  get counts(): { readonly live: number; readonly deleted: number } {
    return { live: this.liveCount, deleted: this.entries.size - this.liveCount };
  }

  /** Applies a committed command at entry position `at` (its term and index, the fence of any grant). */
  apply<C extends Command>(cmd: C, at: Fence): Result<OutcomeByType[C["type"]]> {
    checkAt(at);
    const invalid = validateCommand(cmd);
    if (invalid !== undefined) return fail("invalid-argument", invalid);
    return this.dispatch(cmd, at) as Result<OutcomeByType[C["type"]]>;
  }

  /** Decodes and applies a committed entry; malformed bytes fail with invalid-argument. */
  applyBytes(data: Uint8Array, at: Fence): Result<Outcome> {
    checkAt(at);
    const decoded = decodeCommand(data);
    // Same message as apply() for a well-formed but invalid command, so replicas and proposers agree.
    if (!decoded.ok) return fail("invalid-argument", decoded.message);
    return this.apply(decoded.command, at);
  }

  private dispatch(cmd: Command, at: Fence): Result<Outcome> {
    if (this.jobs.size > 0) {
      // Every command changes at most the name it names (and the header, copied at the start).
      const name = cmd.type === "CreateSequence" ? cmd.def.name : "name" in cmd ? cmd.name : undefined;
      if (name !== undefined) for (const j of this.jobs) j.beforeChange(name);
    }
    switch (cmd.type) {
      case "InitCluster": {
        const changed = this.id === "";
        if (changed) this.id = cmd.identity;
        return ok({ type: "InitCluster", identity: this.id, changed });
      }
      case "RaiseMark":
        return this.raise(cmd);
      case "ReleaseRestore": {
        const held = this.released !== undefined;
        this.released = undefined;
        return ok({ type: "ReleaseRestore", held });
      }
      case "CreateSequence":
        return this.create(cmd.def, cmd.createdAtMs);
      case "UpdateSequence":
        return this.update(cmd);
      case "DeleteSequence":
        return this.delete(cmd.name, cmd.expectedRevision);
      case "LeaseSegment":
        return this.lease(cmd, at);
      case "ReturnSegment":
        return this.giveBack(cmd);
    }
  }

  private create(input: SequenceDef, createdAtMs: number): Result<CreateOutcome> {
    const prev = this.entry(input.name);
    if (prev && !prev.deleted) return fail("already-exists", `sequence "${input.name}" already exists`);
    // A re-created type 1 name keeps the key its ids were permuted with (given again or inherited).
    const inherited = prev?.def.keyFingerprint;
    const def = freezeDef(
      inherited !== undefined && input.keyFingerprint === undefined
        ? { ...input, keyFingerprint: inherited }
        : input,
    );
    if (prev) {
      // A name never bound to a key may be bound now, as its first type 1 lease would.
      const unbound = prev.def.keyFingerprint === undefined;
      const diff = identityDiff(
        unbound ? { ...prev.def, keyFingerprint: def.keyFingerprint } : prev.def,
        def,
      );
      if (diff.length > 0) {
        return fail(
          "failed-precondition",
          `sequence "${def.name}" was deleted; re-creating it needs the same type, length, starting, step, ` +
            `datacenters, layout and (type 1) permutation key so that no id is issued twice ` +
            `(differs: ${diff.join(", ")})`,
        );
      }
    }
    if (this.liveCount >= MAX_SEQUENCES) {
      return fail(
        "exhausted",
        `the ledger holds ${MAX_SEQUENCES} sequences, the maximum (delete some first)`,
      );
    }
    this.rev += 1n;
    const fields = { def, createdAtMs, createRevision: this.rev, modRevision: this.rev, deleted: false };
    const entry: Entry = prev ? Object.assign(prev, fields) : { ...fields, dcs: new Map() };
    this.entries.set(def.name, entry);
    if (!prev) this.names.insert(def.name);
    this.liveCount += 1;
    const message = prev
      ? `re-created sequence "${def.name}": leasing resumes above the marks kept when it was deleted`
      : `created sequence "${def.name}"`;
    return ok({
      type: "CreateSequence",
      sequence: record(entry),
      revision: this.rev,
      resumed: !!prev,
      message,
    });
  }

  private update(cmd: Extract<Command, { type: "UpdateSequence" }>): Result<UpdateOutcome> {
    const entry = this.live(cmd.name);
    if (!entry) return fail("not-found", `sequence "${cmd.name}" does not exist`);
    const stale = revisionMismatch(entry, cmd.name, cmd.expectedRevision);
    if (stale) return stale;
    const { autoDisk, ordering, limits, reserveSeconds } = cmd.changes;
    const prev = entry.def;
    const next = freezeDef({
      ...prev,
      autoDisk: autoDisk ?? prev.autoDisk,
      ordering: ordering ?? prev.ordering,
      limits: limits ?? prev.limits,
      ...(reserveSeconds !== undefined ? { reserveSeconds } : {}),
    });
    // Each change is valid alone; together with the fields kept they may not be (ordering dc
    // without a reserve).
    const clash = validateSequenceDef(next);
    if (clash.length > 0) return fail("invalid-argument", describeErrors(clash));
    const changed =
      next.autoDisk !== prev.autoDisk ||
      next.ordering !== prev.ordering ||
      next.limits.maxSegmentSize !== prev.limits.maxSegmentSize ||
      next.reserveSeconds !== prev.reserveSeconds;
    if (changed) {
      this.rev += 1n;
      entry.def = next;
      entry.modRevision = this.rev;
    }
    return ok({ type: "UpdateSequence", sequence: record(entry), revision: this.rev, changed });
  }

  private delete(name: string, expectedRevision: bigint | undefined): Result<DeleteOutcome> {
    const entry = this.live(name);
    if (!entry) return fail("not-found", `sequence "${name}" does not exist`);
    const stale = revisionMismatch(entry, name, expectedRevision);
    if (stale) return stale;
    if (this.entries.size - this.liveCount >= MAX_DELETED_NAMES) {
      return fail(
        "exhausted",
        `the ledger keeps ${MAX_DELETED_NAMES} deleted names (each keeps its marks forever), the maximum: ` +
          `re-create a deleted name instead of making new ones`,
      );
    }
    this.rev += 1n;
    this.entries.set(name, tombstone(entry.def, entry.dcs));
    this.liveCount -= 1;
    return ok({ type: "DeleteSequence", name, revision: this.rev });
  }

  private lease(cmd: Extract<Command, { type: "LeaseSegment" }>, at: Fence): Result<LeaseOutcome> {
    const entry = this.live(cmd.name);
    if (!entry) return fail("not-found", `sequence "${cmd.name}" does not exist`);
    const { def } = entry;
    if (cmd.dc >= def.datacenters) return fail("invalid-argument", dcRangeMessage(def, cmd.dc));
    if (this.released && !this.released.has(holdKey(cmd.name, cmd.dc))) {
      return fail(
        "failed-precondition",
        `the ledger was restored from a backup and does not know ids issued after it: raise the mark ` +
          `of ${label(cmd.name, cmd.dc)} above them (dispenser seq raise-mark), or release the restore ` +
          `once every mark is raised (dispenser ledger release)`,
      );
    }
    // Type 1 ids are a keyed permutation of the counter: edges mapping with different keys would
    // collide. The first lease that names a key binds it to the sequence; any other is refused.
    const fp = cmd.keyFingerprint;
    const bind = def.type === 1 && fp !== undefined && def.keyFingerprint === undefined;
    if (def.type === 1 && fp !== undefined && def.keyFingerprint !== undefined && fp !== def.keyFingerprint) {
      return fail(
        "failed-precondition",
        `the permutation secret of this edge (fingerprint ${fp}) is not the one sequence "${cmd.name}" ` +
          `was bound to (fingerprint ${def.keyFingerprint}): its ids would collide with those already issued`,
      );
    }
    // A DC's state is stored only once something succeeded, so a failed lease leaves no trace.
    const existing = entry.dcs.get(cmd.dc);
    const d = existing ?? new DcLedger();
    const limits = { maxSegmentSize: def.limits.maxSegmentSize, capacity: capacity(def, cmd.dc) };
    const r = d.lease(cmd, limits, at, label(cmd.name, cmd.dc));
    if (!r.ok) return r;
    if (!existing) entry.dcs.set(cmd.dc, d);
    if (bind && !r.data.replayed) {
      this.rev += 1n;
      entry.def = freezeDef({ ...def, keyFingerprint: fp });
      entry.modRevision = this.rev;
    }
    const { grant, replayed, capped } = r.data;
    return ok({ type: "LeaseSegment", grant: { ...grant, name: cmd.name, dc: cmd.dc }, replayed, capped });
  }

  private giveBack(cmd: Extract<Command, { type: "ReturnSegment" }>): Result<ReturnOutcome> {
    const entry = this.live(cmd.name);
    if (!entry) return fail("not-found", `sequence "${cmd.name}" does not exist`);
    if (cmd.dc >= entry.def.datacenters) return fail("invalid-argument", dcRangeMessage(entry.def, cmd.dc));
    const existing = entry.dcs.get(cmd.dc);
    const d = existing ?? new DcLedger();
    const r = d.giveBack(cmd, label(cmd.name, cmd.dc));
    if (!r.ok) return r;
    if (!existing) entry.dcs.set(cmd.dc, d);
    return ok({ type: "ReturnSegment", name: cmd.name, dc: cmd.dc, ...r.data, hwm: d.hwm });
  }

  /** Also for a deleted name: raising its marks before it is re-created is what restores need. */
  private raise(cmd: Extract<Command, { type: "RaiseMark" }>): Result<RaiseOutcome> {
    const entry = this.entry(cmd.name);
    if (!entry) return fail("not-found", `sequence "${cmd.name}" does not exist`);
    if (cmd.dc >= entry.def.datacenters) return fail("invalid-argument", dcRangeMessage(entry.def, cmd.dc));
    const cap = capacity(entry.def, cmd.dc);
    if (cmd.to > cap) {
      return fail(
        "invalid-argument",
        `to ${cmd.to} is above the ${cap} counter values of ${label(cmd.name, cmd.dc)}`,
      );
    }
    const d = entry.dcs.get(cmd.dc) ?? new DcLedger();
    const raised = d.raise(cmd.to);
    if (raised) entry.dcs.set(cmd.dc, d);
    if (raised && entry.deleted) this.entries.set(cmd.name, tombstone(entry.def, entry.dcs));
    if (this.released && this.released.size < MAX_RELEASED) this.released.add(holdKey(cmd.name, cmd.dc));
    return ok({ type: "RaiseMark", name: cmd.name, dc: cmd.dc, hwm: d.hwm, raised });
  }

  private live(name: string): Entry | undefined {
    const e = this.entries.get(name);
    return typeof e === "object" ? e : undefined;
  }

  /** A live name, or a deleted one read back from its tombstone (a copy: store it if changed). */
  private entry(name: string): Entry | undefined {
    const e = this.entries.get(name);
    if (typeof e !== "string") return e;
    const p = `tombstone of "${name}"`;
    const so = readObject(parseJson(utf8(e), p), p, ["def", "deleted", "marks"]);
    const def = freezeDef(defFromJson(so["def"], `${p}.def`));
    return { ...readKept(so["marks"], def, p), def };
  }

  get(name: string): SequenceRecord | undefined {
    const e = this.live(name);
    return e && record(e);
  }

  /** Live sequences in name order, strictly after `after`, at most `limit` (1..1000). */
  list(opts: { readonly after?: string; readonly limit: number }): Result<ListPage> {
    const { after, limit } = opts;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      return fail("invalid-argument", `limit must be between 1 and ${MAX_LIST_LIMIT}`);
    }
    const sequences: SequenceRecord[] = [];
    let next: string | undefined;
    for (const name of this.names.from(after, true)) {
      const e = this.live(name);
      if (!e) continue;
      if (sequences.length === limit) {
        next = sequences.at(-1)?.def.name;
        break;
      }
      sequences.push(record(e));
    }
    return ok({ sequences, revision: this.rev, next });
  }

  /** The reserved windows of a live (sequence, dc), oldest first: a pool may carve only inside these. */
  windows(name: string, dc: number): readonly WindowRecord[] {
    return this.live(name)?.dcs.get(dc)?.windows ?? [];
  }

  /** Marks and stats of a (sequence, dc), also for a deleted name (its kept marks). */
  dcInfo(name: string, dc: number): DcInfo | undefined {
    const e = this.entry(name);
    if (!e || !Number.isInteger(dc) || dc < 0 || dc >= e.def.datacenters) return undefined;
    return info(e.def, dc, e.dcs.get(dc) ?? new DcLedger());
  }

  /** dcInfo for every DC of a known name that has leased anything, in dc order. */
  dcInfos(name: string): readonly DcInfo[] {
    const e = this.entry(name);
    if (!e) return [];
    return [...e.dcs.keys()]
      .sort((a, b) => a - b)
      .map((dc) => info(e.def, dc, e.dcs.get(dc) ?? new DcLedger()));
  }

  /**
   * Deterministic: sequences by name, DCs by number, object keys sorted. `backup`: what a restore
   * needs and nothing secret: the catalog, the marks and stats, the identity; no grant, memo or
   * window (so no return token), and the restore hold set (see restoreHold()).
   */
  snapshot(opts: { readonly backup?: boolean } = {}): Uint8Array {
    const job = this.beginSnapshot(opts);
    while (!job.step(Number.MAX_SAFE_INTEGER));
    return job.result();
  }

  /**
   * A snapshot of the state as it is now, written a slice at a time (`step`) while commands go on
   * applying: a name about to change before the job reached it is encoded first, as it was (copy
   * on write), so the bytes are those snapshot() would have given now. A node's Raft loop keeps
   * answering while a large state is written. Call cancel() on a job given up.
   */
  beginSnapshot(opts: { readonly backup?: boolean } = {}): SnapshotJob {
    const backup = opts.backup === true;
    const header = canonicalJson({
      format: SNAPSHOT_FORMAT,
      revision: bigJson(this.rev),
      ...(this.id === "" ? {} : { identity: this.id }),
      ...(backup ? { restoreHold: [] } : this.released ? { restoreHold: [...this.released].sort() } : {}),
    });
    const job = new StateSnapshotJob(
      this.names.toArray(),
      header,
      (name) => this.itemJson(name, backup),
      (j) => this.jobs.delete(j),
    );
    this.jobs.add(job);
    return job;
  }

  /** One name's snapshot item, canonical JSON. */
  private itemJson(name: string, backup: boolean): string {
    const e = this.entries.get(name);
    if (e === undefined) throw new Error(`ledger state lost sequence "${name}"`);
    // A deleted name: its tombstone is its item.
    if (typeof e === "string") return e;
    const order = [...e.dcs.keys()].sort((a, b) => a - b);
    const dcs = order.map((dc): Json => ({ dc, state: e.dcs.get(dc)?.toJson(backup) ?? null }));
    return canonicalJson({
      def: defToJson(e.def),
      createdAtMs: e.createdAtMs,
      createRevision: bigJson(e.createRevision),
      modRevision: bigJson(e.modRevision),
      deleted: false,
      dcs,
    });
  }

  /** Rebuilds a state from snapshot(); throws on anything malformed (a corrupt snapshot must stop the node). */
  static restore(data: Uint8Array): LedgerState {
    try {
      if (data[0] === FRAMED_MAGIC[0]) return LedgerState.fromFrames(data);
      const o = readObject(
        parseJson(data, "snapshot"),
        "snapshot",
        ["format", "revision", "sequences"],
        ["identity", "restoreHold"],
      );
      const s = LedgerState.fromHeader(o, [...LOADABLE_SNAPSHOT_FORMATS]);
      const format = o["format"] as number;
      const items = readArray(o["sequences"], "sequences", MAX_SEQUENCES + MAX_DELETED_NAMES);
      for (const [i, item] of items.entries()) s.readItem(item, `sequences[${i}]`, format);
      return s.checked();
    } catch (e) {
      if (e instanceof DecodeError) throw new Error(`corrupt ledger snapshot: ${e.message}`, { cause: e });
      throw e;
    }
  }

  private static fromFrames(data: Uint8Array): LedgerState {
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (buf.byteLength < FRAMED_MAGIC.byteLength || !buf.subarray(0, 4).equals(FRAMED_MAGIC))
      throw new DecodeError("unknown snapshot encoding");
    const frames = readFrames(buf);
    const frame = (what: string): Uint8Array => {
      const f = frames.next();
      if (f.done) throw new DecodeError(`${what}: missing`);
      return f.value;
    };
    const o = readObject(
      parseJson(frame("header"), "snapshot header"),
      "snapshot header",
      ["format", "revision"],
      ["identity", "restoreHold"],
    );
    const s = LedgerState.fromHeader(o, [SNAPSHOT_FORMAT]);
    let i = 0;
    for (const f of frames) {
      if (i >= MAX_SEQUENCES + MAX_DELETED_NAMES) throw new DecodeError("the snapshot holds too many names");
      const p = `sequences[${i++}]`;
      const text = f.toString("utf8");
      s.readItem(parseJson(f, p), p, SNAPSHOT_FORMAT, text);
    }
    return s.checked();
  }

  private static fromHeader(o: Readonly<Record<string, unknown>>, formats: readonly number[]): LedgerState {
    const format = o["format"];
    if (typeof format !== "number" || !LOADABLE_SNAPSHOT_FORMATS.has(format) || !formats.includes(format))
      throw new DecodeError(`unknown snapshot format ${String(format)}`);
    const s = new LedgerState();
    s.rev = readBigint(o["revision"], "revision");
    if (o["identity"] !== undefined) {
      s.id = readString(o["identity"], "identity", 32);
      if (!IDENTITY_PATTERN.test(s.id)) throw new DecodeError("identity must be 32 hex digits");
    }
    if (o["restoreHold"] !== undefined) {
      s.released = new Set();
      for (const [i, k] of readArray(o["restoreHold"], "restoreHold", MAX_RELEASED).entries())
        s.released.add(readString(k, `restoreHold[${i}]`, 80));
    }
    return s;
  }

  /**
   * Reads one name of a snapshot (names come in order). `text`: the item as written (a framed
   * snapshot's), kept as the tombstone of a deleted name instead of encoding it again.
   */
  private readItem(item: unknown, p: string, format: number, text?: string): void {
    const compact = format >= 2 && (item as Record<string, unknown> | null)?.["deleted"] === true;
    const so = compact
      ? readObject(item, p, ["def", "deleted", "marks"])
      : readObject(item, p, ["def", "createdAtMs", "createRevision", "modRevision", "deleted", "dcs"]);
    const def = freezeDef(defFromJson(so["def"], `${p}.def`));
    const errors = validateSequenceDef(def);
    if (errors.length > 0) throw new DecodeError(`${p}.def is invalid: ${describeErrors(errors)}`);
    const prevName = this.names.last();
    if (prevName !== undefined && prevName >= def.name) throw new DecodeError(`${p} is out of name order`);
    if (compact) {
      const kept = readKept(so["marks"], def, p).dcs;
      this.entries.set(def.name, text ?? tombstone(def, kept));
      this.names.push(def.name);
      return;
    }
    const entry: Entry = {
      def,
      createdAtMs: readInt(so["createdAtMs"], `${p}.createdAtMs`),
      createRevision: readBigint(so["createRevision"], `${p}.createRevision`),
      modRevision: readBigint(so["modRevision"], `${p}.modRevision`),
      deleted: readBool(so["deleted"], `${p}.deleted`),
      dcs: new Map(),
    };
    if (entry.createdAtMs < 0) throw new DecodeError(`${p}.createdAtMs must be >= 0`);
    if (entry.deleted && format >= 2) throw new DecodeError(`${p} is deleted but not in the compact form`);
    let prevDc = -1;
    for (const [j, dcItem] of readArray(so["dcs"], `${p}.dcs`, def.datacenters).entries()) {
      const dp = `${p}.dcs[${j}]`;
      const dco = readObject(dcItem, dp, ["dc", "state"]);
      const dc = readInt(dco["dc"], `${dp}.dc`);
      if (dc <= prevDc || dc >= def.datacenters)
        throw new DecodeError(`${dp}.dc ${dc} is out of range or order`);
      prevDc = dc;
      entry.dcs.set(dc, DcLedger.fromJson(dco["state"], `${dp}.state`, format));
    }
    // A format 1 snapshot kept more of a deleted name: reduced to what a deletion keeps now.
    this.entries.set(def.name, entry.deleted ? tombstone(def, entry.dcs) : entry);
    this.names.push(def.name);
    if (!entry.deleted) this.liveCount += 1;
  }

  private checked(): this {
    if (this.liveCount > MAX_SEQUENCES || this.entries.size - this.liveCount > MAX_DELETED_NAMES)
      throw new DecodeError("the snapshot holds more names than the ledger allows");
    return this;
  }
}

/** A framed snapshot's frames, in order; a truncated frame is a DecodeError. */
function* readFrames(buf: Buffer): Generator<Buffer> {
  let off = FRAMED_MAGIC.byteLength;
  while (off < buf.byteLength) {
    const n = off + 4 <= buf.byteLength ? buf.readUInt32BE(off) : -1;
    if (n < 0 || off + 4 + n > buf.byteLength) throw new DecodeError("truncated frame");
    yield buf.subarray(off + 4, off + 4 + n);
    off += 4 + n;
  }
}

/**
 * A snapshot as one JSON document (what formats 1 and 2 were, and what restore also loads):
 * for people and tests to read. Its size is bounded by V8's longest string (512 MiB).
 */
export function snapshotDocument(data: Uint8Array): string {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (data[0] !== FRAMED_MAGIC[0]) return buf.toString("utf8");
  const parts: string[] = [];
  for (const f of readFrames(buf)) parts.push(f.toString("utf8"));
  const header = parts.shift() ?? "{}";
  // "sequences" sorts after every header key: the document stays canonical.
  return `${header.slice(0, -1)},"sequences":[${parts.join(",")}]}`;
}

/** A snapshot in the making (see LedgerState.beginSnapshot). */
export interface SnapshotJob {
  /** Write up to `names` more names; true once the snapshot is complete. */
  step(names: number): boolean;
  /** The snapshot's bytes, once step() returned true. */
  result(): Uint8Array;
  /** Give the job up (the state stops copying names for it). */
  cancel(): void;
}

class StateSnapshotJob implements SnapshotJob {
  private next = 0;
  private readonly chunks: Buffer[] = [];
  private chunk = Buffer.allocUnsafe(SNAPSHOT_CHUNK_BYTES);
  private used = 0;
  /** Names changed before the job reached them: their items as they were at the start. */
  private readonly kept = new Map<string, string>();
  private ended = false;

  constructor(
    /** The names at the start, in order: names created later are not in this snapshot. */
    private readonly names: readonly string[],
    header: string,
    private readonly encode: (name: string) => string,
    private readonly onEnd: (job: StateSnapshotJob) => void,
  ) {
    FRAMED_MAGIC.copy(this.chunk, 0);
    this.used = FRAMED_MAGIC.byteLength;
    this.frame(header);
  }

  beforeChange(name: string): void {
    if (this.kept.has(name)) return;
    const k = lowerBound(this.names, name);
    if (k < this.next || this.names[k] !== name) return;
    this.kept.set(name, this.encode(name));
  }

  step(names: number): boolean {
    if (this.ended) return true;
    const end = Math.min(this.names.length, this.next + Math.max(1, names));
    for (; this.next < end; this.next++) {
      const name = this.names[this.next]!;
      const item = this.kept.get(name);
      if (item !== undefined) this.kept.delete(name);
      this.frame(item ?? this.encode(name));
    }
    if (this.next < this.names.length) return false;
    this.chunks.push(this.chunk.subarray(0, this.used));
    this.end();
    return true;
  }

  result(): Uint8Array {
    if (this.next < this.names.length || !this.ended) throw new Error("snapshot job not complete");
    return this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
  }

  cancel(): void {
    this.end();
  }

  private end(): void {
    this.ended = true;
    this.kept.clear();
    this.onEnd(this);
  }

  private frame(json: string): void {
    const n = Buffer.byteLength(json, "utf8");
    if (this.used + 4 + n > this.chunk.byteLength) {
      this.chunks.push(this.chunk.subarray(0, this.used));
      this.chunk = Buffer.allocUnsafe(Math.max(SNAPSHOT_CHUNK_BYTES, 4 + n));
      this.used = 0;
    }
    this.chunk.writeUInt32BE(n, this.used);
    this.used += 4 + this.chunk.write(json, this.used + 4, "utf8");
  }
}

/** What a deleted name keeps, as its snapshot item: its definition and one mark per DC. */
function tombstone(def: SequenceDef, dcs: ReadonlyMap<number, DcLedger>): string {
  const order = [...dcs.keys()].sort((a, b) => a - b);
  return canonicalJson({
    def: defToJson(def),
    deleted: true,
    marks: order.map((dc) => [dc, bigJson(dcs.get(dc)!.hwm)]),
  });
}

/** A deleted name as the snapshot keeps it: [[dc, "hwm"], ...] in dc order. */
function readKept(v: unknown, def: SequenceDef, p: string): Omit<Entry, "def"> {
  const dcs = new Map<number, DcLedger>();
  let prevDc = -1;
  for (const [j, item] of readArray(v, `${p}.marks`, def.datacenters).entries()) {
    const t = readArray(item, `${p}.marks[${j}]`, 2);
    const dc = readInt(t[0], `${p}.marks[${j}][0]`);
    if (t.length !== 2 || dc <= prevDc || dc >= def.datacenters)
      throw new DecodeError(`${p}.marks[${j}] is not [dc, mark] in dc order`);
    prevDc = dc;
    dcs.set(dc, DcLedger.kept(readBigint(t[1], `${p}.marks[${j}][1]`)));
  }
  // Not kept for a deleted name (never shown; a re-creation sets them anew).
  return { createdAtMs: 0, createRevision: 0n, modRevision: 0n, deleted: true, dcs };
}

function record(e: Entry): SequenceRecord {
  return {
    def: e.def,
    createdAtMs: e.createdAtMs,
    createRevision: e.createRevision,
    modRevision: e.modRevision,
  };
}

function info(def: SequenceDef, dc: number, d: DcLedger): DcInfo {
  const cap = capacity(def, dc);
  return { dc, hwm: d.hwm, capacity: cap, remaining: cap - d.hwm, top: d.top, stats: d.stats };
}

function revisionMismatch(e: Entry, name: string, expected: bigint | undefined): Failure | undefined {
  if (expected === undefined || e.modRevision === expected) return undefined;
  return fail("aborted", `sequence "${name}" is at revision ${e.modRevision}, not ${expected}`);
}

function dcRangeMessage(def: SequenceDef, dc: number): string {
  return `dc ${dc} is outside 0..${def.datacenters - 1} for sequence "${def.name}" (${def.datacenters} datacenters)`;
}
