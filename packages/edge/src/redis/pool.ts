// A DC's reserve pool in its Redis Cluster: ledger windows of one (sequence, dc) under
// `{seq:<name>}:dc:<dc>:pool`, which the DC's edges carve chunks from. Redis replicates
// asynchronously and a failover can lose acknowledged writes, so nothing here trusts Redis to keep
// a carve; every rule below turns a doubt into ids burnt, never into ids issued twice:
//
// - A carve counts only once `WAIT` confirmed it on every replica the slot's master has (sent on
//   the master's own connection, right after the script): a replica promoted later holds it. A
//   short WAIT, a timeout, a lost reply or MOVED: the carve is burnt (`unconfirmed` or an error).
// - Windows only go up: a window is added only right after the ledger granted it (fresh, above
//   every earlier window of the (sequence, dc)), never twice (an add that failed in any way is
//   not retried: the window is burnt), and the script refuses one below the highest the pool held.
// - A pool that is gone (a master restarted empty, master and replica lost together) starts again
//   under a new generation from fresh windows only; what the old one had left is burnt.
// - A pool behind what this edge saw of it (same generation, fewer carves: restored from an old
//   copy) is deleted by the carve that notices, so it too starts again from fresh windows.

import type { Cluster, Redis } from "ioredis";
import { randomBytes } from "node:crypto";
import { RedisPlaneError, withDeadline } from "./errors.js";
import { keySlot, poolKey } from "./keys.js";
import type { PoolScript } from "./pool-scripts.js";
import { POOL_SCRIPTS } from "./pool-scripts.js";

/** Largest window a pool takes: sizes and offsets stay exact in Lua's doubles. */
export const MAX_POOL_WINDOW = 2n ** 52n;
/** Largest carve. */
export const MAX_POOL_CARVE = 1_000_000;
/** Windows one pool holds at most (not yet carved out). */
export const MAX_POOL_WINDOWS = 16;

export interface PoolFence {
  readonly term: bigint;
  readonly index: bigint;
}

export interface PoolWindow {
  /** Counter values [start, end) of the (sequence, dc), as the ledger granted them. */
  readonly start: bigint;
  readonly end: bigint;
  readonly fence: PoolFence;
}

export type AddOutcome =
  /** `dropped`: ids a pool written by another server process had left; it was deleted first. */
  | { readonly kind: "added"; readonly gen: string; readonly dropped: number }
  /** The pool held a window reaching `top` already: this one was not added. */
  | { readonly kind: "below"; readonly gen: string; readonly top: bigint }
  | { readonly kind: "full"; readonly gen: string; readonly top: bigint };

/** What a carve saw of the pool, for rates and runway. */
export interface PoolGauge {
  /** Ids left to carve after this carve. */
  readonly left: number;
  /** Ids carved from this pool (generation) ever. */
  readonly carved: number;
  /** Ids this carve skipped (burnt) because they lay below the caller's floor. */
  readonly skipped: number;
}

export type CarveOutcome =
  /** Counter values [start, start + count), confirmed on the master's `replicas` replicas. */
  | ({
      readonly kind: "carved";
      readonly gen: string;
      readonly start: bigint;
      readonly count: number;
      readonly fence: PoolFence;
      readonly replicas: number;
    } & PoolGauge)
  /** Every window is carved out: the pool needs a fresh window from the ledger. */
  | ({ readonly kind: "empty" } & PoolGauge)
  /** The next ids lie below the floor and skipping was not asked: nothing was carved. */
  | { readonly kind: "below-floor" }
  /** No pool (never filled, or lost): fill it with a fresh window. */
  | { readonly kind: "missing" }
  /**
   * The pool was behind what this edge saw of it, or written by another server process than the
   * slot's master now (a failover, a restart from disk: confirmed carves may be lost), and is now
   * deleted: what it held (`dropped`) is burnt, fresh windows fill it again.
   */
  | {
      readonly kind: "rolled-back";
      readonly why: "master-changed" | "rolled-back";
      readonly dropped: number;
    }
  /** WAIT confirmed the carve on fewer replicas than the master has: it is burnt. */
  | { readonly kind: "unconfirmed"; readonly acked: number; readonly wanted: number }
  /**
   * The slot's master has fewer replicas connected than every carve must reach: nothing was
   * carved (no WAIT could confirm it), nothing is burnt.
   */
  | { readonly kind: "no-replicas"; readonly connected: number; readonly wanted: number };

export interface PoolState {
  readonly gen: string;
  /** Ids left to carve, over every window. */
  readonly left: bigint;
  readonly windows: number;
}

export interface ReservePoolOptions {
  /** Deadline of one call, WAIT included, in ms. Default 1,000. */
  callTimeoutMs?: number;
  /** How long WAIT may wait for the replicas, in ms (below callTimeoutMs). Default 500. */
  waitMs?: number;
  /**
   * Replicas every carve must reach, at the least: WAIT asks for this many or for every replica
   * the master has connected (ROLE), whichever is more. Default 1; 0 only for a Redis without
   * replicas (whose restart loses the pool: that is burnt, never repeated).
   */
  minReplicas?: number;
}

/** How long a master's count of connected replicas is reused. */
const ROLE_CACHE_MS = 1_000;

/** What this edge saw last of a pool: a pool behind it was restored from an old copy. */
interface Seen {
  gen: string;
  carves: number;
}

const DECIMAL = /^\d{1,20}$/;

function bad(op: string, what: string): RedisPlaneError {
  return new RedisPlaneError("bad-reply", `${op}: ${what}`);
}

function int(op: string, v: unknown): number {
  if (typeof v !== "string" || !/^\d{1,16}$/.test(v)) throw bad(op, `not a count: ${String(v)}`);
  return Number(v);
}

/** A statistic that may pass 2^53 (ids skipped over many windows): approximate beyond it. */
function approx(op: string, v: unknown): number {
  if (typeof v !== "string" || !/^\d{1,20}$/.test(v)) throw bad(op, `not a count: ${String(v)}`);
  return Number(v);
}

function big(op: string, v: unknown): bigint {
  if (typeof v !== "string" || !DECIMAL.test(v)) throw bad(op, `not a counter value: ${String(v)}`);
  return BigInt(v);
}

export class ReservePool {
  private readonly callTimeoutMs: number;
  private readonly waitMs: number;
  private readonly minReplicas: number;
  /** Per pool key; bounded by the sequences this edge serves. */
  private readonly seen = new Map<string, Seen>();
  /** Per master (host:port): its connected replicas, and when that was read. Bounded by the masters. */
  private readonly roles = new Map<string, { replicas: number; atMs: number }>();

  constructor(
    private readonly client: Redis | Cluster,
    o: ReservePoolOptions = {},
  ) {
    this.callTimeoutMs = o.callTimeoutMs ?? 1_000;
    this.waitMs = o.waitMs ?? 500;
    this.minReplicas = o.minReplicas ?? 1;
    if (!(this.waitMs > 0 && this.waitMs < this.callTimeoutMs))
      throw new RangeError("waitMs must be positive and below callTimeoutMs");
  }

  /**
   * Adds a window the ledger just granted. Call it once per window: after any error the window
   * may or may not be in the pool, and a second add could bring back a window already carved from
   * (in a pool lost meanwhile): the caller burns it instead.
   */
  async add(name: string, dc: number, w: PoolWindow): Promise<AddOutcome> {
    const key = poolKey(name, dc);
    const size = w.end - w.start;
    if (w.start < 0n || size <= 0n || size > MAX_POOL_WINDOW)
      throw new RedisPlaneError("invalid-argument", `a window holds 1..2^52 ids, not [${w.start}, ${w.end})`);
    const op = `pool.add(${name}, ${dc})`;
    const gen = randomBytes(8).toString("hex");
    const reply = await this.call(op, async () => {
      const { node } = await this.master(key);
      return this.script(node, POOL_SCRIPTS.add, key, [
        w.start.toString(),
        w.end.toString(),
        size.toString(),
        w.fence.term.toString(),
        w.fence.index.toString(),
        gen,
        String(MAX_POOL_WINDOWS),
      ]);
    });
    if (!Array.isArray(reply) || typeof reply[1] !== "string")
      throw bad(op, `unexpected reply ${JSON.stringify(reply)}`);
    const [kind, g] = reply as [unknown, string, unknown];
    if (kind === "OK") return { kind: "added", gen: g, dropped: approx(op, reply[3]) };
    if (kind === "BELOW") return { kind: "below", gen: g, top: big(op, reply[2]) };
    if (kind === "FULL") return { kind: "full", gen: g, top: big(op, reply[2]) };
    throw bad(op, `unexpected reply ${JSON.stringify(reply)}`);
  }

  /**
   * Carves up to `max` ids at or above `floor` and waits until the carve is on every replica of
   * the slot's master. Ids below the floor are skipped (burnt) when `skip`, else nothing is carved
   * (`below-floor`). Anything but `carved` issues nothing; after an error the carve may have
   * happened and is burnt (never carved again: the pool moved past it, or it is lost with it).
   */
  async carve(name: string, dc: number, max: number, floor = 0n, skip = true): Promise<CarveOutcome> {
    const key = poolKey(name, dc);
    if (!Number.isSafeInteger(max) || max < 1 || max > MAX_POOL_CARVE)
      throw new RedisPlaneError("invalid-argument", `a carve takes 1..${MAX_POOL_CARVE} ids, not ${max}`);
    const op = `pool.carve(${name}, ${dc})`;
    const seen = this.seen.get(key);
    return this.call(op, async (): Promise<CarveOutcome> => {
      const { node } = await this.master(key);
      const connected = await this.connectedReplicas(node);
      if (connected < this.minReplicas) return { kind: "no-replicas", connected, wanted: this.minReplicas };
      const replicas = connected;
      const reply = await this.script(node, POOL_SCRIPTS.carve, key, [
        String(max),
        seen?.gen ?? "",
        String(seen?.carves ?? 0),
        floor.toString(),
        skip ? "1" : "0",
      ]);
      if (!Array.isArray(reply)) throw bad(op, `unexpected reply ${JSON.stringify(reply)}`);
      const r = reply as unknown[];
      const kind = r[0];
      if (kind === "MISSING") {
        this.seen.delete(key);
        return { kind: "missing" };
      }
      if (kind === "MASTER_CHANGED") {
        this.seen.delete(key);
        return { kind: "rolled-back", why: "master-changed", dropped: approx(op, reply[2]) };
      }
      if (kind === "ROLLED_BACK") {
        this.seen.delete(key);
        return { kind: "rolled-back", why: "rolled-back", dropped: approx(op, reply[3]) };
      }
      const gen = r[1];
      if (typeof gen !== "string") throw bad(op, `unexpected reply ${JSON.stringify(reply)}`);
      const carves = int(op, reply[2]);
      this.seen.set(key, { gen, carves });
      if (kind === "BELOW_FLOOR") return { kind: "below-floor" };
      if (kind === "EMPTY" && reply.length === 6)
        return { kind: "empty", left: 0, carved: approx(op, reply[4]), skipped: approx(op, reply[5]) };
      if (kind !== "OK" || reply.length !== 11) throw bad(op, `unexpected reply ${JSON.stringify(reply)}`);
      const gauge = {
        left: approx(op, reply[8]),
        carved: approx(op, reply[9]),
        skipped: approx(op, reply[10]),
      };
      const start = big(op, reply[3]) + BigInt(int(op, reply[4]));
      const count = int(op, reply[5]);
      const fence = { term: big(op, reply[6]), index: big(op, reply[7]) };
      // On the connection that ran the script: WAIT counts the replicas that have its writes.
      const acked = await node.call("WAIT", String(replicas), String(this.waitMs));
      if (typeof acked !== "number") throw bad(op, `WAIT answered ${JSON.stringify(acked)}`);
      if (acked < replicas) return { kind: "unconfirmed", acked, wanted: replicas };
      return { kind: "carved", gen, start, count, fence, replicas, ...gauge };
    });
  }

  /** What is left in the pool (undefined when there is none), read from the master. */
  async state(name: string, dc: number): Promise<PoolState | undefined> {
    const key = poolKey(name, dc);
    const op = `pool.state(${name}, ${dc})`;
    const h = await this.call(op, async () => (await this.master(key)).node.hgetall(key));
    if (Object.keys(h).length === 0) return undefined;
    const gen = h["gen"];
    if (gen === undefined) throw bad(op, "no generation");
    const windows = int(op, h["windows"]);
    const head = int(op, h["head"]);
    let left = -BigInt(int(op, h["used"]));
    for (let k = head; k < windows; k++) {
      const m = /^\d+ \d+ (\d+) \d+ \d+$/.exec(h[`w${k}`] ?? "");
      if (!m) throw bad(op, `window ${k} is malformed`);
      left += BigInt(m[1]!);
    }
    if (head >= windows) left = 0n;
    return { gen, left, windows: windows - head };
  }

  /**
   * The replicas connected to a master, as it says (ROLE). Not the client's slot map: CLUSTER SLOTS
   * leaves out a replica until its replication offset moves, and WAIT 0 would confirm nothing.
   */
  private async connectedReplicas(node: Redis): Promise<number> {
    const k = nodeKey(node);
    const now = Date.now();
    const cached = this.roles.get(k);
    if (cached && now - cached.atMs < ROLE_CACHE_MS) return cached.replicas;
    const role = await node.call("ROLE");
    if (!Array.isArray(role) || role[0] !== "master" || !Array.isArray(role[2]))
      throw new RedisPlaneError("unavailable", `${k} is not a master (ROLE ${JSON.stringify(role)})`);
    const replicas = role[2].length;
    this.roles.set(k, { replicas, atMs: now });
    return replicas;
  }

  /** The master serving `key`'s slot now. */
  private async master(key: string): Promise<{ node: Redis }> {
    const c = this.client as Cluster;
    if (!("slots" in c) || typeof c.nodes !== "function") return { node: this.client as Redis };
    const find = (): Redis | undefined => {
      const keys = c.slots[keySlot(key)];
      return keys?.[0] === undefined ? undefined : c.nodes("master").find((n) => nodeKey(n) === keys[0]);
    };
    // A client that has sent nothing yet has not connected, nor read the slot map: a PING does.
    if (c.status !== "ready") await c.ping();
    const node = find();
    if (!node) {
      c.refreshSlotsCache();
      throw new RedisPlaneError("unavailable", `no master known for the slot of ${key}`);
    }
    return { node };
  }

  /** EVALSHA, then EVAL when the node has not cached the script (a promoted replica). */
  private async script(node: Redis, s: PoolScript, key: string, args: string[]): Promise<unknown> {
    try {
      return await node.call("EVALSHA", s.sha1, "1", key, ...args);
    } catch (e) {
      if (e instanceof Error && e.message.startsWith("NOSCRIPT"))
        return node.call("EVAL", s.lua, "1", key, ...args);
      if (e instanceof Error && /^(MOVED|ASK)\b/.test(e.message))
        (this.client as Cluster).refreshSlotsCache?.();
      throw e;
    }
  }

  private call<T>(operation: string, f: () => Promise<T>): Promise<T> {
    return withDeadline(operation, this.callTimeoutMs, f);
  }
}

function nodeKey(n: Redis): string {
  return `${n.options.host ?? "127.0.0.1"}:${n.options.port ?? 6379}`;
}
