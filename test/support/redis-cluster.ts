import { execFile, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";

// A real Redis Cluster on loopback: one `redis-server` process per node, created with
// `redis-cli --cluster create`. Nodes daemonize, so the pid comes from the pidfile (the launcher's
// pid is not the server's) and signals go to the real server. A killed daemon is reparented to
// init, which reaps it late: a zombie counts as dead here (its sockets are already closed).

const HOST = "127.0.0.1";
const SLOTS = 16384;
const POLL_MS = 100;
// Ports are probed below the kernel's ephemeral range (32768+ on Linux), so outgoing connections
// never take a port between the probe and the server's bind; the rest of the suite binds port 0,
// which lands in the ephemeral range, so it does not collide with these either.
const PORT_LOW = 20_000;
const PORT_HIGH = 32_700;
const MAX_LAUNCH_ATTEMPTS = 5;

/** Whether `redis-server` and `redis-cli` are on PATH; suites that need them skip otherwise. */
export function redisServerAvailable(): boolean {
  const ok = (cmd: string): boolean => {
    const r = spawnSync(cmd, ["--version"], { stdio: "ignore", timeout: 5_000 });
    return r.error === undefined && r.status === 0;
  };
  return ok("redis-server") && ok("redis-cli");
}

/** The reason printed by a suite that skips for lack of Redis. */
export const REDIS_SKIP_REASON =
  "redis-server/redis-cli not on PATH: skipping the Redis Cluster suites (install redis-server and redis-tools to run them)";

export interface RedisClusterOptions {
  /** Master count; every master gets `replicasPerMaster` replicas. Default 3. */
  masters?: number;
  /** Default 1. */
  replicasPerMaster?: number;
  /** `cluster-node-timeout` in ms: how long a master may be silent before a replica takes over. Default 2,000. */
  nodeTimeoutMs?: number;
  /** Bound of `start()`, `restart()` and every wait not given its own, in ms. Default 30,000. */
  waitTimeoutMs?: number;
}

export interface RedisNodeAddress {
  host: string;
  port: number;
}

/** One contiguous slot range and who serves it, as `CLUSTER SLOTS` reports it. */
export interface SlotRange {
  start: number;
  end: number;
  master: number;
  replicas: number[];
}

interface NodeProcess {
  port: number;
  busPort: number;
  dir: string;
  conf: string;
  pidFile: string;
  logFile: string;
  pid: number | undefined;
  /** When `kill` last signalled it (Date.now()), and the slots it served then. */
  killedAtMs: number | undefined;
  slotsAtKill: SlotRange[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Every cluster not yet stopped: an exiting test process kills their servers synchronously. */
const live = new Set<RedisCluster>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const c of live) c.abandon();
  });
}

async function portFree(port: number): Promise<boolean> {
  const s = createServer();
  return new Promise((resolve) => {
    s.once("error", () => resolve(false));
    s.listen(port, HOST, () => s.close(() => resolve(true)));
  });
}

async function probePort(taken: Set<number>): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = PORT_LOW + Math.floor(Math.random() * (PORT_HIGH - PORT_LOW));
    if (taken.has(port)) continue;
    if (await portFree(port)) {
      taken.add(port);
      return port;
    }
  }
  throw new Error(`no free port found in ${PORT_LOW}..${PORT_HIGH}`);
}

/** Dead or a zombie: either way it serves nothing and holds no port. */
export function processGone(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  }
  const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  return state === "Z" || state === "X";
}

/** Fully gone from the process table (a zombie is not). */
export function processReaped(pid: number): boolean {
  try {
    readFileSync(`/proc/${pid}/stat`);
    return false;
  } catch {
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  }
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(" ")} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** `field:value` lines of INFO or CLUSTER INFO. */
export function parseInfo(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split("\r\n")) {
    const i = line.indexOf(":");
    if (i > 0 && !line.startsWith("#")) m.set(line.slice(0, i), line.slice(i + 1));
  }
  return m;
}

function parseSlots(reply: unknown): SlotRange[] {
  if (!Array.isArray(reply)) throw new Error(`CLUSTER SLOTS: unexpected reply ${String(reply)}`);
  return reply.map((r: unknown) => {
    if (!Array.isArray(r) || r.length < 3) throw new Error("CLUSTER SLOTS: malformed range");
    const nodePort = (n: unknown): number => {
      if (!Array.isArray(n)) throw new Error("CLUSTER SLOTS: malformed node");
      return Number(n[1]);
    };
    return {
      start: Number(r[0]),
      end: Number(r[1]),
      master: nodePort(r[2]),
      replicas: r.slice(3).map(nodePort),
    };
  });
}

/** Who serves which slots, in a form two nodes' views can be compared by. */
function slotOwners(slots: SlotRange[]): string {
  return slots
    .map((r) => `${r.start}-${r.end}@${r.master}`)
    .sort()
    .join(",");
}

/**
 * Real `redis-server` processes on 127.0.0.1 forming one Redis Cluster (default 3 masters with a
 * replica each). Call `start()` in `beforeAll` and `stop()` in `afterAll`: `stop()` is idempotent
 * and also runs when `start()` fails, and an exiting test process SIGKILLs whatever is left.
 */
export class RedisCluster {
  private readonly masterCount: number;
  private readonly replicasPerMaster: number;
  private readonly nodeTimeoutMs: number;
  private readonly waitTimeoutMs: number;
  private readonly procs = new Map<number, NodeProcess>();
  private baseDir: string | undefined;
  private stopping: Promise<void> | undefined;

  constructor(o: RedisClusterOptions = {}) {
    this.masterCount = o.masters ?? 3;
    this.replicasPerMaster = o.replicasPerMaster ?? 1;
    this.nodeTimeoutMs = o.nodeTimeoutMs ?? 2_000;
    this.waitTimeoutMs = o.waitTimeoutMs ?? 30_000;
    if (!Number.isInteger(this.masterCount) || this.masterCount < 3)
      throw new Error("a Redis Cluster needs at least 3 masters");
    if (!Number.isInteger(this.replicasPerMaster) || this.replicasPerMaster < 0)
      throw new Error("replicasPerMaster must be a non-negative integer");
  }

  async start(): Promise<void> {
    if (this.baseDir) throw new Error("RedisCluster already started");
    installExitHook();
    live.add(this);
    this.baseDir = mkdtempSync(join(tmpdir(), "redis-cluster-"));
    try {
      const total = this.masterCount * (1 + this.replicasPerMaster);
      const taken = new Set<number>();
      const nodes: NodeProcess[] = [];
      for (let i = 0; i < total; i++) nodes.push(await this.newNode(i, taken));
      await Promise.all(nodes.map((n) => this.launchFresh(n, taken)));
      await run(
        "redis-cli",
        [
          "--cluster",
          "create",
          ...this.ports().map((p) => `${HOST}:${p}`),
          "--cluster-replicas",
          String(this.replicasPerMaster),
          "--cluster-yes",
        ],
        this.waitTimeoutMs,
      );
      await this.waitHealthy();
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  private async newNode(i: number, taken: Set<number>): Promise<NodeProcess> {
    const dir = join(this.baseDir!, `node-${i}`);
    mkdirSync(dir);
    const n: NodeProcess = {
      port: await probePort(taken),
      busPort: await probePort(taken),
      dir,
      conf: join(dir, "redis.conf"),
      pidFile: join(dir, "redis.pid"),
      logFile: join(dir, "redis.log"),
      pid: undefined,
      killedAtMs: undefined,
      slotsAtKill: [],
    };
    return n;
  }

  private writeConf(n: NodeProcess): void {
    // The bus port is set explicitly rather than port+10000, so both can be probed independently.
    const lines = [
      `port ${n.port}`,
      `bind ${HOST}`,
      `cluster-enabled yes`,
      `cluster-port ${n.busPort}`,
      `cluster-config-file nodes.conf`,
      `cluster-node-timeout ${this.nodeTimeoutMs}`,
      `dir ${n.dir}`,
      `daemonize yes`,
      `pidfile ${n.pidFile}`,
      `logfile ${n.logFile}`,
      `appendonly no`,
      `save ""`,
      // Replicas sync at once instead of waiting 5 s for more replicas to batch with.
      `repl-diskless-sync-delay 0`,
      // CLUSTER SLOTS hides a replica until its replication offset moves, which with no writes
      // happens at the master's replication ping only (every 10 s by default).
      `repl-ping-replica-period 1`,
    ];
    writeFileSync(n.conf, lines.join("\n") + "\n");
  }

  /** First launch: on a port lost to someone else between probe and bind, move to new ports. */
  private async launchFresh(n: NodeProcess, taken: Set<number>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      this.writeConf(n);
      this.procs.set(n.port, n);
      try {
        await this.launch(n);
        return;
      } catch (e) {
        this.procs.delete(n.port);
        if (attempt >= MAX_LAUNCH_ATTEMPTS || !this.log(n).includes("Address already in use")) throw e;
        n.port = await probePort(taken);
        n.busPort = await probePort(taken);
        rmSync(n.logFile, { force: true });
      }
    }
  }

  /** Runs redis-server on `n`'s config and waits until the pidfile names a live server answering PING. */
  private async launch(n: NodeProcess): Promise<void> {
    rmSync(n.pidFile, { force: true });
    n.pid = undefined;
    n.killedAtMs = undefined;
    await run("redis-server", [n.conf], 10_000);
    const until = Date.now() + Math.min(this.waitTimeoutMs, 10_000);
    for (;;) {
      const pid = this.readPid(n);
      const exited = pid !== undefined && processGone(pid);
      if (pid !== undefined && !exited) {
        n.pid = pid;
        if ((await this.tryCommand(n.port, "PING")) === "PONG") return;
      }
      if (exited || Date.now() > until)
        throw new Error(`redis-server on port ${n.port} did not come up:\n${this.log(n).slice(-2_000)}`);
      await sleep(50);
    }
  }

  private readPid(n: NodeProcess): number | undefined {
    try {
      const pid = Number(readFileSync(n.pidFile, "utf8").trim());
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  private log(n: NodeProcess): string {
    try {
      return readFileSync(n.logFile, "utf8");
    } catch {
      return "";
    }
  }

  private node(port: number): NodeProcess {
    const n = this.procs.get(port);
    if (!n) throw new Error(`no Redis node on port ${port} in this cluster`);
    return n;
  }

  /** Startup nodes for an ioredis Cluster. */
  nodes(): RedisNodeAddress[] {
    return this.ports().map((port) => ({ host: HOST, port }));
  }

  ports(): number[] {
    return [...this.procs.keys()];
  }

  /** The server's pid, as its pidfile gave it (undefined while down). */
  pid(port: number): number | undefined {
    return this.node(port).pid;
  }

  isUp(port: number): boolean {
    const n = this.node(port);
    return n.pid !== undefined && !processGone(n.pid);
  }

  logs(port: number): string {
    return this.log(this.node(port));
  }

  /** One command on one node's own connection; rejects on an error reply or after `timeoutMs`. */
  async command(port: number, name: string, ...args: (string | number)[]): Promise<unknown> {
    const r = new Redis({
      host: HOST,
      port,
      lazyConnect: true,
      connectTimeout: 1_000,
      commandTimeout: 2_000,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
    });
    r.on("error", () => undefined);
    try {
      await r.connect();
      return await r.call(name, args);
    } finally {
      r.disconnect();
    }
  }

  private async tryCommand(port: number, name: string, ...args: (string | number)[]): Promise<unknown> {
    return this.command(port, name, ...args).catch(() => undefined);
  }

  /** `INFO <section>` or `CLUSTER INFO` of one node, as a map. */
  async info(port: number, section?: string): Promise<Map<string, string>> {
    const text =
      section === "cluster"
        ? this.command(port, "CLUSTER", "INFO")
        : this.command(port, "INFO", section ?? "default");
    return parseInfo(String(await text));
  }

  private livePorts(): number[] {
    return this.ports().filter((p) => this.isUp(p));
  }

  /** The slot map as a live node sees it. */
  async slotMap(): Promise<SlotRange[]> {
    let last: unknown;
    for (const p of this.livePorts()) {
      try {
        return parseSlots(await this.command(p, "CLUSTER", "SLOTS"));
      } catch (e) {
        last = e;
      }
    }
    throw new Error(`no live node answered CLUSTER SLOTS: ${String(last)}`);
  }

  /** The port of the master serving `keyOrSlot` (a key is hashed by the cluster itself). */
  async masterOf(keyOrSlot: string | number): Promise<number> {
    const slot = typeof keyOrSlot === "number" ? keyOrSlot : await this.keySlot(keyOrSlot);
    const range = (await this.slotMap()).find((r) => r.start <= slot && slot <= r.end);
    if (!range) throw new Error(`slot ${slot} is not served by any master`);
    return range.master;
  }

  async keySlot(key: string): Promise<number> {
    const p = this.livePorts()[0];
    if (p === undefined) throw new Error("no live Redis node");
    return Number(await this.command(p, "CLUSTER", "KEYSLOT", key));
  }

  /** Current replicas of the master on `port`. */
  async replicasOf(port: number): Promise<number[]> {
    const r = (await this.slotMap()).find((s) => s.master === port);
    return r ? r.replicas : [];
  }

  /**
   * Sends a real signal to the server on `port`. SIGKILL, SIGTERM, SIGINT and SIGQUIT wait until the
   * process is gone; others (SIGSTOP, SIGCONT) return at once.
   */
  async kill(port: number, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const n = this.node(port);
    if (n.pid === undefined || processGone(n.pid)) throw new Error(`Redis node ${port} is not running`);
    n.slotsAtKill = (await this.slotMap().catch(() => [])).filter((r) => r.master === port);
    process.kill(n.pid, signal);
    n.killedAtMs = Date.now();
    if (!["SIGKILL", "SIGTERM", "SIGINT", "SIGQUIT"].includes(signal)) return;
    const pid = n.pid;
    await this.waitFor(`node ${port} (pid ${pid}) to exit after ${signal}`, 10_000, () =>
      Promise.resolve(processGone(pid)),
    );
    n.pid = undefined;
  }

  /**
   * Starts a stopped node again with its config and `nodes.conf`, so it rejoins with its old
   * identity (a failed-over master comes back as a replica). Waits until it shares the cluster's
   * slot map and, as a replica, until its sync is done and the others list it: before that it
   * cannot take over.
   */
  async restart(port: number): Promise<void> {
    const n = this.node(port);
    if (n.pid !== undefined && !processGone(n.pid)) throw new Error(`Redis node ${port} is still running`);
    await this.launch(n);
    await this.waitFor(`node ${port} to rejoin the cluster`, this.waitTimeoutMs, async () => {
      const cl = await this.info(port, "cluster").catch(() => undefined);
      if (cl?.get("cluster_state") !== "ok") return false;
      // Right after start it still believes in the slot map it had when it died.
      const own = await this.command(port, "CLUSTER", "SLOTS").then(parseSlots, () => undefined);
      const other = this.livePorts().find((p) => p !== port);
      const theirs =
        other === undefined
          ? own
          : await this.command(other, "CLUSTER", "SLOTS").then(parseSlots, () => undefined);
      if (!own || !theirs || slotOwners(own) !== slotOwners(theirs)) return false;
      const repl = await this.info(port, "replication").catch(() => undefined);
      if (repl?.get("role") === "master") return true;
      // Others list a replica in CLUSTER SLOTS (what clients read) only once it has synced.
      return repl?.get("master_link_status") === "up" && theirs.some((r) => r.replicas.includes(port));
    });
  }

  /**
   * Waits until the slots the killed master on `deadPort` served belong to another master, and
   * every live node reports `cluster_state:ok` with the same slot map. Returns the new master and
   * the time since the kill.
   */
  async waitForFailover(
    deadPort: number,
    timeoutMs = this.waitTimeoutMs,
  ): Promise<{ newMaster: number; sinceKillMs: number }> {
    const n = this.node(deadPort);
    const slot = n.slotsAtKill[0]?.start;
    if (slot === undefined) throw new Error(`node ${deadPort} served no slots when it was killed`);
    let newMaster = 0;
    await this.waitFor(`a replica to take over the slots of ${deadPort}`, timeoutMs, async () => {
      const maps: string[] = [];
      for (const p of this.livePorts()) {
        const cl = await this.info(p, "cluster").catch(() => undefined);
        if (cl?.get("cluster_state") !== "ok") return false;
        const slots = await this.command(p, "CLUSTER", "SLOTS").then(parseSlots, () => undefined);
        if (!slots) return false;
        const owner = slots.find((r) => r.start <= slot && slot <= r.end)?.master;
        if (owner === undefined || owner === deadPort) return false;
        newMaster = owner;
        maps.push(slotOwners(slots));
      }
      return maps.length > 0 && maps.every((m) => m === maps[0]);
    });
    return { newMaster, sinceKillMs: Date.now() - (n.killedAtMs ?? Date.now()) };
  }

  /** Waits until every node is ok, all slots are served, and every replica has synced. */
  async waitHealthy(timeoutMs = this.waitTimeoutMs): Promise<void> {
    const total = this.procs.size;
    await this.waitFor("the Redis Cluster to become healthy", timeoutMs, async () => {
      for (const p of this.ports()) {
        const cl = await this.info(p, "cluster").catch(() => undefined);
        if (
          cl?.get("cluster_state") !== "ok" ||
          cl.get("cluster_slots_ok") !== String(SLOTS) ||
          cl.get("cluster_known_nodes") !== String(total)
        )
          return false;
        const repl = await this.info(p, "replication").catch(() => undefined);
        if (repl?.get("role") === "slave" && repl.get("master_link_status") !== "up") return false;
      }
      const slots = await this.slotMap();
      const covered = slots.reduce((s, r) => s + r.end - r.start + 1, 0);
      return covered === SLOTS && slots.every((r) => r.replicas.length === this.replicasPerMaster);
    });
  }

  private async waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (await check()) return;
      if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await sleep(POLL_MS);
    }
  }

  /** SIGKILLs every server at once; for the process exit hook, which cannot wait. */
  killAllNow(): void {
    for (const n of this.procs.values()) {
      if (n.pid === undefined) continue;
      try {
        process.kill(n.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
  }

  /** Last resort when the test process exits without `stop()`: kill, and remove the files. */
  abandon(): void {
    this.killAllNow();
    if (this.baseDir) rmSync(this.baseDir, { recursive: true, force: true });
  }

  /** Kills every server, waits until they are gone, and removes the node directories. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.stopNow();
    return this.stopping;
  }

  private async stopNow(): Promise<void> {
    const pids = [...this.procs.values()].flatMap((n) => (n.pid === undefined ? [] : [n.pid]));
    this.killAllNow();
    // Exit is bounded; being reaped by init is waited for (so `pgrep` comes back empty) but a
    // zombie that stays is not an error: it holds no port and no memory.
    const until = Date.now() + 10_000;
    while (pids.some((p) => !processGone(p)) && Date.now() < until) await sleep(20);
    const reapedBy = Date.now() + 5_000;
    while (pids.some((p) => !processReaped(p)) && Date.now() < reapedBy) await sleep(50);
    for (const n of this.procs.values()) n.pid = undefined;
    live.delete(this);
    const stuck = pids.filter((p) => !processGone(p));
    if (this.baseDir) rmSync(this.baseDir, { recursive: true, force: true });
    if (stuck.length > 0) throw new Error(`redis-server pids ${stuck.join(", ")} survived SIGKILL`);
  }
}
