// The edge's Redis plane: per-DC shared state under hash-tagged keys (see keys.ts).
//
// Redis is never the authority on uniqueness here. It mirrors the ledger's catalog (guarded by
// the ledger's revision, so a stale edge cannot overwrite a newer mirror) and it counts what
// edges generated and wasted, for DC-wide INFO. Both may be lost or rolled back by a failover
// (replication is asynchronous): the ledger stays the source of truth, and a lost mirror is
// rewritten from it. Nothing read here may decide whether an id can be issued.
//
// Every call is bounded by `callTimeoutMs` and fails with a typed `RedisPlaneError`. A failed
// call may still have run (see errors.ts): callers retry idempotent writes (mirror, delete) and
// accept that a retried stats report may count twice.

import type { Cluster, Redis } from "ioredis";
import { RedisPlaneError, withDeadline } from "./errors.js";
import { checkEdgeId, definitionKey, edgesKey, guardKey } from "./keys.js";
import type { PlaneScript } from "./scripts.js";
import { PLANE_SCRIPTS } from "./scripts.js";
import type { DcGuard, DcStats, EdgeTotals, MirroredDefinition, MirrorOutcome } from "./types.js";

export interface RedisPlaneOptions {
  /**
   * Deadline of one call in ms, retries and redirections included. Give the client a
   * `commandTimeout` as well, so commands it holds are dropped too. Default 1,000.
   */
  callTimeoutMs?: number;
  /** `dcStats` counts an edge as seen when its last report is at most this old, in ms. Default 60,000. */
  edgeSeenWindowMs?: number;
  /** Distinct edge ids one (sequence, dc) may count; a new edge past it is refused. Default 1,024. */
  edgesPerDcMax?: number;
  /** How long a deleted definition's tombstone keeps stale mirrors out, in ms. Default one day. */
  tombstoneTtlMs?: number;
  /** Fields of one mirrored definition, `name` included. Default 64. */
  definitionFieldsMax?: number;
  /** Length of one mirrored field value, in characters. Default 1,024. */
  definitionValueLengthMax?: number;
}

const INT64_MAX = 2n ** 63n - 1n;
const FIELD_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
const RESERVED_FIELDS = new Set(["revision", "tombstone"]);
const COUNT_PATTERN = /^-?\d{1,19}$/;
const MS_PATTERN = /^\d{1,16}$/;

type ScriptCommand = (key: string, ...args: string[]) => Promise<unknown>;

function positiveInt(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v <= 0)
    throw new RangeError(`${name} must be a positive integer, got ${v}`);
  return v;
}

function checkCount(what: string, v: bigint): void {
  if (typeof v !== "bigint" || v < 0n || v > INT64_MAX)
    throw new RedisPlaneError("invalid-argument", `${what} must be a bigint in 0..2^63-1, got ${String(v)}`);
}

function checkRevision(v: bigint): void {
  checkCount("revision", v);
}

function checkNowMs(v: number): void {
  if (!Number.isSafeInteger(v) || v < 0)
    throw new RedisPlaneError("invalid-argument", `nowMs must be a non-negative integer, got ${v}`);
}

function badReply(operation: string, what: string): RedisPlaneError {
  return new RedisPlaneError("bad-reply", `${operation}: ${what}`);
}

function parseCount(operation: string, v: unknown): bigint {
  if (typeof v !== "string" || !COUNT_PATTERN.test(v)) throw badReply(operation, `not a count: ${String(v)}`);
  return BigInt(v);
}

function parseMs(operation: string, v: unknown): number {
  if (typeof v !== "string" || !MS_PATTERN.test(v))
    throw badReply(operation, `not a time in ms: ${String(v)}`);
  return Number(v);
}

function parseOutcome(operation: string, reply: unknown): MirrorOutcome {
  if (!Array.isArray(reply) || reply.length !== 2 || (reply[0] !== 0 && reply[0] !== 1))
    throw badReply(operation, `unexpected reply ${JSON.stringify(reply)}`);
  return { applied: reply[0] === 1, revision: parseCount(operation, reply[1]) };
}

/**
 * The Redis plane over one ioredis client: a `Cluster` (keys of one sequence share a slot) or a
 * single `Redis`. The client is the caller's: the plane neither connects nor closes it.
 */
export class RedisPlane {
  private readonly callTimeoutMs: number;
  private readonly edgeSeenWindowMs: number;
  private readonly edgesPerDcMax: number;
  private readonly tombstoneTtlMs: number;
  private readonly definitionFieldsMax: number;
  private readonly definitionValueLengthMax: number;

  constructor(
    private readonly client: Redis | Cluster,
    o: RedisPlaneOptions = {},
  ) {
    this.callTimeoutMs = positiveInt("callTimeoutMs", o.callTimeoutMs ?? 1_000);
    this.edgeSeenWindowMs = positiveInt("edgeSeenWindowMs", o.edgeSeenWindowMs ?? 60_000);
    this.edgesPerDcMax = positiveInt("edgesPerDcMax", o.edgesPerDcMax ?? 1_024);
    this.tombstoneTtlMs = positiveInt("tombstoneTtlMs", o.tombstoneTtlMs ?? 86_400_000);
    this.definitionFieldsMax = positiveInt("definitionFieldsMax", o.definitionFieldsMax ?? 64);
    this.definitionValueLengthMax = positiveInt(
      "definitionValueLengthMax",
      o.definitionValueLengthMax ?? 1_024,
    );
    for (const s of Object.values(PLANE_SCRIPTS)) {
      // Defining again on a shared client replaces the command with the same script.
      client.defineCommand(s.command, { lua: s.lua, numberOfKeys: 1 });
    }
  }

  /**
   * Mirrors a catalog definition (`def.name` names the sequence) at the ledger's `revision`.
   * Written only when the stored revision is lower; otherwise `applied` is false and the stored
   * revision is returned. The hash is replaced whole, so fields left out disappear.
   */
  async mirrorDefinition(def: Readonly<Record<string, string>>, revision: bigint): Promise<MirrorOutcome> {
    const name = def["name"];
    if (name === undefined) throw new RedisPlaneError("invalid-argument", "definition has no name field");
    const key = definitionKey(name);
    checkRevision(revision);
    const entries = Object.entries(def);
    if (entries.length > this.definitionFieldsMax)
      throw new RedisPlaneError(
        "invalid-argument",
        `definition has ${entries.length} fields, more than ${this.definitionFieldsMax}`,
      );
    const args: string[] = [];
    for (const [field, value] of entries) {
      if (!FIELD_PATTERN.test(field) || RESERVED_FIELDS.has(field))
        throw new RedisPlaneError("invalid-argument", `bad definition field name ${JSON.stringify(field)}`);
      if (typeof value !== "string" || value.length > this.definitionValueLengthMax)
        throw new RedisPlaneError(
          "invalid-argument",
          `field ${field} must be a string of at most ${this.definitionValueLengthMax} characters`,
        );
      args.push(field, value);
    }
    const op = `mirrorDefinition(${name})`;
    const mirror = this.script(PLANE_SCRIPTS.mirror);
    const reply = await this.call(op, () => mirror(key, revision.toString(), ...args));
    return parseOutcome(op, reply);
  }

  /** The mirrored definition, or undefined when none is stored (or it was deleted). */
  async readDefinition(name: string): Promise<MirroredDefinition | undefined> {
    const key = definitionKey(name);
    const op = `readDefinition(${name})`;
    const hash = await this.call(op, () => this.client.hgetall(key));
    if (Object.keys(hash).length === 0 || hash["tombstone"] !== undefined) return undefined;
    const { revision, ...fields } = hash;
    // Assert what was read: the plane only ever writes whole definitions of this name.
    if (fields["name"] !== name) throw badReply(op, `mirror holds name ${JSON.stringify(fields["name"])}`);
    return { fields, revision: parseCount(op, revision) };
  }

  /**
   * Deletes the mirror when the stored revision is at most `revision` (or none is stored),
   * leaving a tombstone for `tombstoneTtlMs` so that a stale edge cannot mirror it back.
   * `applied` is false when a newer definition is stored.
   */
  async deleteDefinition(name: string, revision: bigint): Promise<MirrorOutcome> {
    const key = definitionKey(name);
    checkRevision(revision);
    const op = `deleteDefinition(${name})`;
    const del = this.script(PLANE_SCRIPTS.delete);
    const reply = await this.call(op, () => del(key, revision.toString(), String(this.tombstoneTtlMs)));
    return parseOutcome(op, reply);
  }

  /**
   * Adds one edge's generated and wasted counts (both or neither) and stamps it seen at `nowMs`
   * (never moving back). Returns the edge's totals. Not idempotent: a retry after an ambiguous
   * failure may count twice, which only skews statistics.
   */
  async reportEdgeStats(
    name: string,
    dc: number,
    edgeId: string,
    generatedDelta: bigint,
    wastedDelta: bigint,
    nowMs: number,
  ): Promise<EdgeTotals> {
    const key = edgesKey(name, dc);
    checkEdgeId(edgeId);
    checkCount("generatedDelta", generatedDelta);
    checkCount("wastedDelta", wastedDelta);
    checkNowMs(nowMs);
    const op = `reportEdgeStats(${name}, ${dc}, ${edgeId})`;
    const report = this.script(PLANE_SCRIPTS.report);
    const reply = await this.call(op, () =>
      report(
        key,
        edgeId,
        generatedDelta.toString(),
        wastedDelta.toString(),
        String(nowMs),
        String(this.edgesPerDcMax),
      ),
    );
    if (!Array.isArray(reply) || reply.length !== 3)
      throw badReply(op, `unexpected reply ${JSON.stringify(reply)}`);
    return {
      generated: parseCount(op, reply[0]),
      wasted: parseCount(op, reply[1]),
      seenMs: parseMs(op, reply[2]),
    };
  }

  /**
   * Totals of one (sequence, dc) over all its edges, read in one command. `edgesSeen` counts the
   * edges that reported at most `windowMs` before `nowMs`.
   */
  async dcStats(name: string, dc: number, nowMs: number, windowMs = this.edgeSeenWindowMs): Promise<DcStats> {
    const key = edgesKey(name, dc);
    checkNowMs(nowMs);
    if (!Number.isSafeInteger(windowMs) || windowMs <= 0)
      throw new RedisPlaneError("invalid-argument", `windowMs must be a positive integer, got ${windowMs}`);
    const op = `dcStats(${name}, ${dc})`;
    const hash = await this.call(op, () => this.client.hgetall(key));
    let generated = 0n;
    let wasted = 0n;
    const seen = new Map<string, number>();
    for (const [field, value] of Object.entries(hash)) {
      const i = field.lastIndexOf(":");
      const edge = field.slice(0, i);
      const kind = field.slice(i + 1);
      if (i <= 0) throw badReply(op, `unexpected field ${JSON.stringify(field)}`);
      if (kind === "generated") generated += parseCount(op, value);
      else if (kind === "wasted") wasted += parseCount(op, value);
      else if (kind === "seen") seen.set(edge, parseMs(op, value));
      else throw badReply(op, `unexpected field ${JSON.stringify(field)}`);
    }
    let edgesSeen = 0;
    for (const ms of seen.values()) if (ms >= nowMs - windowMs) edgesSeen++;
    return { generated, wasted, edges: seen.size, edgesSeen };
  }

  /**
   * Adds what this edge remembers of the ledger for `name`/`dc` (its identity, its issued mark)
   * to what the DC's edges remember (the first identity, the highest mark), and returns the
   * result. A lost or rolled-back guard only weakens the check (a fresh edge learns less).
   */
  async noteGuard(name: string, dc: number, identity: string, mark: bigint): Promise<DcGuard> {
    const key = guardKey(name, dc);
    checkCount("mark", mark);
    if (!/^[0-9a-f]{0,64}$/.test(identity))
      throw new RedisPlaneError(
        "invalid-argument",
        `identity must be hex digits, got ${JSON.stringify(identity)}`,
      );
    const op = `noteGuard(${name}, ${dc})`;
    const guard = this.script(PLANE_SCRIPTS.guard);
    const reply = await this.call(op, () => guard(key, identity, mark.toString()));
    if (!Array.isArray(reply) || reply.length !== 2 || typeof reply[0] !== "string")
      throw badReply(op, `unexpected reply ${JSON.stringify(reply)}`);
    return { identity: reply[0], mark: parseCount(op, reply[1]) };
  }

  /** What the DC's edges remember for `name`/`dc`; undefined when nothing is stored. */
  async readGuard(name: string, dc: number): Promise<DcGuard | undefined> {
    const key = guardKey(name, dc);
    const op = `readGuard(${name}, ${dc})`;
    const h = await this.call(op, () => this.client.hgetall(key));
    if (h["mark"] === undefined) return undefined;
    return { identity: h["identity"] ?? "", mark: parseCount(op, h["mark"]) };
  }

  private script(s: PlaneScript): ScriptCommand {
    const f = (this.client as unknown as Record<string, ScriptCommand | undefined>)[s.command];
    if (typeof f !== "function") throw new Error(`script command ${s.command} is not defined on the client`);
    return f.bind(this.client);
  }

  private call<T>(operation: string, f: () => Promise<T>): Promise<T> {
    return withDeadline(operation, this.callTimeoutMs, f);
  }
}
