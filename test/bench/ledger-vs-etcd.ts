// Benchmark: the segment ledger against etcd on the same machine, in the same run.
//
//   pnpm bench:ledger                       # or: node --import tsx test/bench/ledger-vs-etcd.ts
//   pnpm bench:ledger --duration 10 --concurrency 1,16,64,128 --failovers 5
//   pnpm bench:ledger --profile /tmp/prof --concurrency 64   # ledger only: the leader's CPU hot spots
//   pnpm bench:ledger --no-etcd --node-options=--trace-gc --logs /tmp/gc   # the nodes' collections
//
// 1. A 3-node ledger on loopback (real processes, fsync on, default tick): LeaseSegment ops/s and
//    p50/p99 latency at each client concurrency, sent to the leader directly.
// 2. A 3-member etcd (Debian `etcd-server`, default fsync) on loopback: synced Put of a small key
//    at the same concurrencies, against the leader, through the same gRPC library (@grpc/grpc-js).
// 3. A bare grpc-js server answering LeaseSegment at once (no Raft, no disk), same client: the most
//    any grpc-js server gets out of this machine and this client, so "ledger/bare" says how much
//    of that ceiling the ledger keeps, and "etcd/bare" where a Go server stands against it.
// 4. Failover: SIGKILL of the leader while a client writes at concurrency 4; time to the next
//    success committed in a newer term. Repeated, restarting the killed member each time.
// Every system is started first, stays up, and gets --settle (default 20) seconds of untimed load
// before any window; --rounds (default 3) rounds each measure every system
// at every concurrency in a rotating order, and each row reported is the round with the median
// ops/s: noise on these shared machines then falls on all systems alike.
// CPU of every server process and of this client is sampled from /proc over each window, so the
// output says which process saturates. Every process and temp dir is removed at the end, also on
// error or Ctrl-C; children also die with this process (setpriv --pdeathsig).
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { ClusterStatusResponse } from "@dispenser/proto";
import { LedgerClient } from "@dispenser/ledger";
import type { Child, CpuWindow, LoadResult, ProfileSummary } from "./support.js";
import {
  alive,
  announcedPort,
  CpuSampler,
  EtcdKv,
  freePort,
  hotSpots,
  median,
  putRequest,
  putResponseTerm,
  machineBusyOver,
  Reaper,
  runLoad,
  scrapeMetrics,
  sleep,
  until,
  withTimeout,
  fmt,
  gcSummary,
  HAVE_SETPRIV,
  log,
  posInt,
  spawnBounded as spawnChild,
} from "./support.js";

const REPO = resolve(import.meta.dirname, "..", "..");
const LEDGER_MAIN = join(REPO, "packages", "ledger", "src", "main.ts");
const BARE_GRPC_MAIN = join(REPO, "test", "bench", "grpc-bare-server.ts");
const SEQUENCE = "bench";

const argv = process.argv.slice(2);
const { values: args } = parseArgs({
  // `pnpm bench:ledger -- --flag` passes the "--" along.
  args: argv[0] === "--" ? argv.slice(1) : argv,
  options: {
    duration: { type: "string", default: "5" },
    warmup: { type: "string", default: "1" },
    concurrency: { type: "string", default: "1,16,64,256" },
    clients: { type: "string", default: "1" },
    failovers: { type: "string", default: "5" },
    "failover-concurrency": { type: "string", default: "4" },
    "no-etcd": { type: "boolean", default: false },
    "no-bare": { type: "boolean", default: false },
    rounds: { type: "string", default: "3" },
    settle: { type: "string", default: "20" },
    "no-failover": { type: "boolean", default: false },
    "tick-ms": { type: "string" },
    profile: { type: "string" },
    "lease-size": { type: "string", default: "1000" },
    baseline: { type: "string" },
    "attempt-ms": { type: "string", default: "3000" },
    "node-options": { type: "string" },
    logs: { type: "string" },
    help: { type: "boolean", default: false },
  },
});

if (args.help) {
  console.log(`usage: node --import tsx test/bench/ledger-vs-etcd.ts [flags]
  --duration S              measured seconds per concurrency (default 5)
  --warmup S                warm-up seconds before each window (default 1)
  --concurrency LIST        client concurrencies (default 1,16,64,256)
  --clients N               LedgerClient instances (and etcd gRPC clients) shared by the workers (default 1)
  --failovers N             leader kills per system (default 5; 0 = none)
  --failover-concurrency N  writers during the failover runs (default 4)
  --no-etcd                 ledger only
  --settle S                untimed load per system, at the highest concurrency, before anything is
                            measured (default 20; 0 = none)
  --rounds N                rounds over every system and concurrency, in rotating order; each row is
                            the round with the median ops/s (default 3; 1 with --profile)
  --no-bare                 skip the bare grpc-js server (LeaseSegment answered at once, no Raft, no disk)
  --no-failover             throughput only
  --tick-ms MS              pass --tick-ms to the ledger nodes (default: the node's own default)
  --profile DIR             ledger throughput only, with the nodes under --cpu-prof; prints the
                            leader's top self-time functions (profiles are kept in DIR)
  --lease-size N            ids per LeaseSegment (default 1000)
  --baseline DIR            also measure the ledger of another checkout (DIR, with its dependencies
                            installed) in the same rounds, as system "base": an A/B of a change
                            that the noise of separate runs would hide
  --node-options=OPTS       options for node running the ledger nodes and the bare gRPC server,
                            e.g. --node-options=--trace-gc (with --logs: a GC table at the end)
  --logs DIR                keep each child's whole output in DIR/<name>.log
  --attempt-ms MS           deadline of one attempt in the failover runs, both systems (default 3000,
                            LedgerClient's default); a put stranded on an etcd follower waits this long`);
  process.exit(0);
}

const DURATION_MS = posInt("duration", args.duration) * 1000;
const WARMUP_MS = posInt("warmup", args.warmup, 0) * 1000;
const CONCURRENCY = (args.concurrency ?? "").split(",").map((c) => posInt("concurrency", c));
const CLIENTS = posInt("clients", args.clients);
const ROUNDS = args.profile ? 1 : posInt("rounds", args.rounds);
const SETTLE_MS = posInt("settle", args.settle, 0) * 1000;
const FAILOVERS = args["no-failover"] || args.profile ? 0 : posInt("failovers", args.failovers, 0);
const FAILOVER_CONC = posInt("failover-concurrency", args["failover-concurrency"]);
const LEASE_SIZE = BigInt(posInt("lease-size", args["lease-size"]));
const ATTEMPT_MS = posInt("attempt-ms", args["attempt-ms"]);
const PROFILE_DIR = args.profile ? resolve(args.profile) : undefined;
const BASELINE_DIR = args.baseline ? resolve(args.baseline) : undefined;
const TICK_ARGS = args["tick-ms"] ? ["--tick-ms", String(posInt("tick-ms", args["tick-ms"]))] : [];

const reaper = new Reaper(8 * 60_000);
if (args.logs !== undefined) reaper.keepLogs(resolve(args.logs));
const NODE_OPTIONS = (args["node-options"] ?? "").split(/\s+/).filter(Boolean);
const RUN_TAG = `${process.pid}-${Date.now().toString(36)}`;

/** Spawn so that the child also dies if this process is killed outright. */
const spawnBounded = (tag: string, cmd: string, argv: string[]): Child =>
  spawnChild(reaper, REPO, tag, cmd, argv);

// ------------------------------------------------------------------------------------------ ledger

interface LedgerMember {
  id: number;
  port: number;
  metricsPort: number;
  dataDir: string;
  child: Child | undefined;
  status: LedgerClient | undefined;
}

/** A ledger cluster of real processes talking to each other directly (no proxies) on loopback. */
class BenchLedger {
  readonly dir = reaper.tmpdir("bench-ledger-");
  readonly members = new Map<number, LedgerMember>();
  readonly clusterId = `bench-${RUN_TAG}`;

  constructor(
    readonly ids: readonly number[],
    private readonly nodeArgs: (id: number) => string[],
    private readonly main = LEDGER_MAIN,
    /** Names its processes (`<name>-<id>`), so a baseline's logs stay apart. */
    private readonly name = "ledger",
  ) {}

  async init(): Promise<void> {
    for (const id of this.ids) {
      this.members.set(id, {
        id,
        port: await freePort(),
        metricsPort: await freePort(),
        dataDir: join(this.dir, `node-${id}`),
        child: undefined,
        status: undefined,
      });
    }
  }

  member(id: number): LedgerMember {
    const m = this.members.get(id);
    if (!m) throw new Error(`no ledger node ${id}`);
    return m;
  }

  address(id: number): string {
    return `127.0.0.1:${this.member(id).port}`;
  }

  endpoints(): string[] {
    return this.ids.map((i) => this.address(i));
  }

  start(id: number): void {
    const m = this.member(id);
    if (alive(m.child)) throw new Error(`ledger node ${id} is running`);
    const peers = this.ids.map((j) => `${j}=${this.address(j)}`).join(",");
    m.child = spawnBounded(`${this.name}-${id}`, process.execPath, [
      ...this.nodeArgs(id),
      "--import",
      "tsx",
      this.main,
      "--id",
      String(id),
      "--cluster-id",
      this.clusterId,
      "--data-dir",
      m.dataDir,
      "--listen",
      this.address(id),
      "--peers",
      peers,
      "--bootstrap",
      "--metrics-listen",
      `127.0.0.1:${m.metricsPort}`,
      "--log-level",
      "warn",
      ...TICK_ARGS,
    ]);
  }

  /** ClusterStatus as node `id` sees it (one short attempt). */
  async status(id: number): Promise<ClusterStatusResponse> {
    const m = this.member(id);
    m.status ??= new LedgerClient({
      endpoints: [this.address(id)],
      attemptTimeoutMs: 500,
      totalTimeoutMs: 0,
    });
    return m.status.call("clusterStatus", {});
  }

  /** The leader, as confirmed by the leader itself. */
  async waitLeader(timeoutMs: number, among: readonly number[] = this.ids): Promise<ClusterStatusResponse> {
    return until("a ledger leader", timeoutMs, async () => {
      for (const id of among) {
        if (!alive(this.member(id).child)) continue;
        const s = await this.status(id).catch(() => undefined);
        if (s && s.leaderId !== 0n && s.leaderId === s.nodeId) return s;
      }
      return undefined;
    });
  }

  pid(id: number): number | undefined {
    const c = this.member(id).child;
    return alive(c) ? c.pid : undefined;
  }

  async kill(id: number, sig: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const c = this.member(id).child;
    if (c) await reaper.kill(c, sig);
  }

  async stop(sig: NodeJS.Signals = "SIGKILL"): Promise<void> {
    for (const m of this.members.values()) m.status?.close();
    for (const id of this.ids) await this.kill(id, sig);
    reaper.removeDir(this.dir);
  }

  /** The node's Raft loop counters from its /metrics. */
  async counters(id: number): Promise<LedgerCounters> {
    const m = await scrapeMetrics(`127.0.0.1:${this.member(id).metricsPort}`);
    const g = (k: string): number => m.get(k) ?? 0;
    return {
      at: performance.now(),
      fsyncCount: g("dispenser_ledger_fsync_seconds_count"),
      fsyncSum: g("dispenser_ledger_fsync_seconds_sum"),
      readyCount: g("dispenser_ledger_ready_seconds_count"),
      readySum: g("dispenser_ledger_ready_seconds_sum"),
      proposalCount: g("dispenser_ledger_proposal_seconds_count"),
      proposalSum: g("dispenser_ledger_proposal_seconds_sum"),
      term: g("dispenser_ledger_raft_term"),
    };
  }

  logs(id: number): string {
    return this.member(id).child?.output.join("").trim().split("\n").slice(-15).join("\n") ?? "";
  }
}

interface LedgerCounters {
  at: number;
  fsyncCount: number;
  fsyncSum: number;
  readyCount: number;
  readySum: number;
  proposalCount: number;
  proposalSum: number;
  term: number;
}

/** What the leader's and a follower's Raft loops did over the window, from their metrics. */
function ledgerDiag(
  leaderId: number,
  followerId: number,
  before: LedgerCounters[],
  after: LedgerCounters[],
  opsPerSec: number,
): string {
  const part = (b: LedgerCounters, a: LedgerCounters): string => {
    const secs = (a.at - b.at) / 1000;
    const fsyncs = a.fsyncCount - b.fsyncCount;
    const readys = a.readyCount - b.readyCount;
    return (
      `${fmt(readys / secs, 0)} Readys/s (mean ${fmt((1000 * (a.readySum - b.readySum)) / Math.max(1, readys), 2)} ms), ` +
      `${fmt(fsyncs / secs, 0)} synced batches/s (mean ${fmt((1000 * (a.fsyncSum - b.fsyncSum)) / Math.max(1, fsyncs), 2)} ms)`
    );
  };
  const [lb, fb] = before as [LedgerCounters, LedgerCounters];
  const [la, fa] = after as [LedgerCounters, LedgerCounters];
  const secs = (la.at - lb.at) / 1000;
  const batches = (la.fsyncCount - lb.fsyncCount) / secs;
  const props = la.proposalCount - lb.proposalCount;
  // A new term means an election ran during the window: its figures are not steady-state ones.
  const election = la.term !== lb.term ? ` [ELECTION during the window: term ${lb.term} → ${la.term}]` : "";
  return (
    `leader node ${leaderId}${election}: ${part(lb, la)}, ${fmt(opsPerSec / Math.max(1, batches), 1)} leases per batch, ` +
    `proposal→applied mean ${fmt((1000 * (la.proposalSum - lb.proposalSum)) / Math.max(1, props), 2)} ms; ` +
    `follower node ${followerId}: ${part(fb, fa)}`
  );
}

function cpuTargets(roles: () => { tag: string; pid: number | undefined }[]): () => Map<string, number> {
  return () => {
    const m = new Map<string, number>();
    for (const r of roles()) if (r.pid !== undefined) m.set(r.tag, r.pid);
    return m;
  };
}

interface FailoverRound {
  /** Kill → first success committed in a newer term (what a client sees). */
  toSuccessMs: number;
  /** Kill → a survivor reports the new leader (polled every 20 ms). */
  toLeaderMs: number;
  from: string;
  to: string;
}

interface SystemResult {
  name: string;
  rows: LoadResult[];
  failovers: FailoverRound[];
  note: string | undefined;
}

/** A system under test, up and idle between measured windows. */
interface System {
  name: string;
  measure(concurrency: number): Promise<LoadResult>;
  /** Untimed load, so the measured windows see processes past their start-up. */
  warm(concurrency: number, ms: number): Promise<void>;
  /** Leader kills; undefined when the system has none to offer. */
  failover?(): Promise<FailoverRound[]>;
  note?: string;
  /** Ledger only: stop the nodes so they write their CPU profiles, and read the leader's. */
  profile?(windowUs: [number, number]): Promise<ProfileSummary>;
  down(): Promise<void>;
}

/** Close every client in `list` and empty it (a closed client must not be used again). */
function closeAll(list: { close(): void }[]): void {
  for (const c of list) c.close();
  list.length = 0;
}

/** The measured operation: a LeaseSegment with a fresh request id, through the worker's client. */
function leaseOp(clients: readonly LedgerClient[], tag: string): (worker: number) => Promise<unknown> {
  let n = 0;
  return (w) =>
    clients[w % clients.length]!.call("leaseSegment", {
      sequence: SEQUENCE,
      dc: 0,
      size: LEASE_SIZE,
      requestId: `${RUN_TAG}-${tag}-${n++}`,
      kind: 0,
    });
}

async function upLedger(name = "ledger", main = LEDGER_MAIN): Promise<System> {
  const nodeArgs = (id: number): string[] =>
    PROFILE_DIR
      ? [...NODE_OPTIONS, "--cpu-prof", "--cpu-prof-dir", join(PROFILE_DIR, `node-${id}`)]
      : NODE_OPTIONS;
  const ledger = new BenchLedger([1, 2, 3], nodeArgs, main, name);
  const down = (): Promise<void> =>
    ledger.stop().catch((e: unknown) => console.error(`ledger cleanup: ${String(e)}`));
  try {
    await ledger.init();
    for (const id of ledger.ids) ledger.start(id);
    const t0 = performance.now();
    let lead: ClusterStatusResponse;
    try {
      lead = await ledger.waitLeader(30_000);
    } catch (e) {
      for (const id of ledger.ids) console.error(`--- ledger node ${id} output:\n${ledger.logs(id)}`);
      throw e;
    }
    const leaderId = Number(lead.leaderId);
    log(
      `${name}: 3 nodes up, leader node ${leaderId} at ${lead.leaderAddress} after ${fmt(performance.now() - t0, 0)} ms` +
        ` (data in ${ledger.dir})`,
    );
    const admin = new LedgerClient({ endpoints: ledger.endpoints(), totalTimeoutMs: 20_000 });
    await admin.call("createSequence", {
      sequence: {
        name: SEQUENCE,
        type: 3,
        starting: 1n,
        step: 1n,
        datacenters: 1,
        layout: 0,
        ordering: 0,
        autoDisk: 0,
        revision: 0n,
        createdAtMs: 0n,
      },
    });
    admin.close();

    const clients = Array.from(
      { length: CLIENTS },
      () => new LedgerClient({ endpoints: [lead.leaderAddress] }),
    );
    const lease = leaseOp(clients, name);
    const sampler = new CpuSampler(
      cpuTargets(() =>
        ledger.ids.map((id) => ({
          tag: id === leaderId ? `${name} leader (node ${id})` : `${name} follower (node ${id})`,
          pid: ledger.pid(id),
        })),
      ),
    );
    const followerId = ledger.ids.find((i) => i !== leaderId)!;
    return {
      name,
      note:
        "ledger: followers answer at once (no leader known, or the leader's address), and LedgerClient retries " +
        "with a back-off of 20 ms doubling to 100 ms, so 'to next success' trails 'to new leader' by up to 0.1 s.",
      async warm(c, ms) {
        await runLoad(c, 0, ms, lease);
      },
      async measure(c) {
        let before: Promise<LedgerCounters[]> | undefined;
        let after: Promise<LedgerCounters[]> | undefined;
        const scrapeBoth = (): Promise<LedgerCounters[]> =>
          Promise.all([ledger.counters(leaderId), ledger.counters(followerId)]);
        const r = await runLoad(c, WARMUP_MS, DURATION_MS, lease, {
          sampler,
          onStart: () => void (before = scrapeBoth()),
          onStop: () => void (after = scrapeBoth()),
        });
        const b = await before?.catch(() => undefined);
        const a = await after?.catch(() => undefined);
        if (a && b) r.diag = ledgerDiag(leaderId, followerId, b, a, r.opsPerSec);
        log(`${name} c=${c}: ${describe(r)}`);
        return r;
      },
      async failover() {
        closeAll(clients);
        return ledgerFailover(ledger);
      },
      async profile(windowUs) {
        closeAll(clients);
        // SIGTERM: the node stops cleanly, and Node writes the profile on the way out.
        log(`ledger: stopping the nodes with SIGTERM to write the CPU profiles to ${PROFILE_DIR}`);
        for (const id of ledger.ids) await ledger.kill(id, "SIGTERM");
        return hotSpots(join(PROFILE_DIR!, `node-${leaderId}`), 30, REPO, windowUs);
      },
      async down() {
        closeAll(clients);
        await down();
      },
    };
  } catch (e) {
    await down();
    throw e;
  }
}

async function ledgerFailover(ledger: BenchLedger): Promise<FailoverRound[]> {
  const client = new LedgerClient({
    endpoints: ledger.endpoints(),
    attemptTimeoutMs: ATTEMPT_MS,
    totalTimeoutMs: 30_000,
  });
  let stop = false;
  let lastOk = 0;
  let errors = 0;
  let reqNo = 0;
  let watch: { afterTerm: bigint; resolve: (t: number) => void } | undefined;
  const worker = async (): Promise<void> => {
    while (!stop) {
      try {
        const r = await client.call("leaseSegment", {
          sequence: SEQUENCE,
          dc: 0,
          size: LEASE_SIZE,
          requestId: `${RUN_TAG}-f-${reqNo++}`,
          kind: 0,
        });
        const t = performance.now();
        lastOk = t;
        const term = r.grant?.fence?.term ?? 0n;
        if (watch && term > watch.afterTerm) {
          watch.resolve(t);
          watch = undefined;
        }
      } catch {
        errors++;
        await sleep(10);
      }
    }
  };
  const workers = Array.from({ length: FAILOVER_CONC }, () => worker());
  const rounds: FailoverRound[] = [];
  try {
    for (let round = 1; round <= FAILOVERS; round++) {
      await until("leases flowing", 20_000, () =>
        Promise.resolve(performance.now() - lastOk < 100 && lastOk > 0 ? true : undefined),
      );
      const lead = await ledger.waitLeader(20_000);
      const old = Number(lead.leaderId);
      const survivors = ledger.ids.filter((i) => i !== old);
      const success = new Promise<number>((resolve) => {
        watch = { afterTerm: lead.term, resolve };
      });
      const tKill = performance.now();
      const killed = ledger.kill(old, "SIGKILL");
      const newLeader = until(
        "a new ledger leader",
        20_000,
        async () => {
          for (const id of survivors) {
            const s = await ledger.status(id).catch(() => undefined);
            if (s && s.leaderId !== 0n && s.leaderId !== BigInt(old))
              return { t: performance.now(), id: Number(s.leaderId) };
          }
          return undefined;
        },
        20,
      );
      const [tOk, nl] = await Promise.all([
        withTimeout(success, 30_000, "a lease after the leader was killed"),
        newLeader,
        killed,
      ]);
      const r: FailoverRound = {
        toSuccessMs: tOk - tKill,
        toLeaderMs: nl.t - tKill,
        from: `node ${old}`,
        to: `node ${nl.id}`,
      };
      rounds.push(r);
      log(
        `ledger failover ${round}/${FAILOVERS}: killed leader node ${old} (term ${lead.term}); ` +
          `new leader node ${nl.id} seen after ${fmt(r.toLeaderMs, 0)} ms; next lease after ${fmt(r.toSuccessMs, 0)} ms`,
      );
      // Bring the killed node back and wait until it follows the leader and has caught up.
      ledger.start(old);
      await until("the restarted ledger node to catch up", 30_000, async () => {
        const l = await ledger.waitLeader(5_000);
        const s = await ledger.status(old);
        return s.leaderId === l.leaderId && s.applied >= l.commit ? true : undefined;
      });
      await sleep(300);
    }
  } finally {
    stop = true;
    await Promise.allSettled(workers);
    client.close();
  }
  log(`ledger failover: ${errors} failed calls during the runs (each retried internally up to 30 s first)`);
  return rounds;
}

// ------------------------------------------------------------------------------------------ etcd

interface EtcdMember {
  name: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  child: Child | undefined;
  kv: EtcdKv | undefined;
}

class BenchEtcd {
  readonly dir = reaper.tmpdir("bench-etcd-");
  readonly members: EtcdMember[] = [];
  private readonly token = `bench-${RUN_TAG}`;

  async init(n: number): Promise<void> {
    for (let i = 1; i <= n; i++) {
      this.members.push({
        name: `m${i}`,
        clientPort: await freePort(),
        peerPort: await freePort(),
        dataDir: join(this.dir, `m${i}`),
        child: undefined,
        kv: undefined,
      });
    }
  }

  start(i: number): void {
    const m = this.members[i]!;
    if (alive(m.child)) throw new Error(`etcd ${m.name} is running`);
    const cluster = this.members.map((x) => `${x.name}=http://127.0.0.1:${x.peerPort}`).join(",");
    m.child = spawnBounded(`etcd-${m.name}`, "etcd", [
      "--name",
      m.name,
      "--data-dir",
      m.dataDir,
      "--listen-client-urls",
      `http://127.0.0.1:${m.clientPort}`,
      "--advertise-client-urls",
      `http://127.0.0.1:${m.clientPort}`,
      "--listen-peer-urls",
      `http://127.0.0.1:${m.peerPort}`,
      "--initial-advertise-peer-urls",
      `http://127.0.0.1:${m.peerPort}`,
      "--initial-cluster",
      cluster,
      "--initial-cluster-token",
      this.token,
      "--initial-cluster-state",
      "new",
      "--logger",
      "zap",
      "--log-level",
      "error",
    ]);
  }

  kv(i: number): EtcdKv {
    const m = this.members[i]!;
    m.kv ??= new EtcdKv(`127.0.0.1:${m.clientPort}`, ATTEMPT_MS);
    return m.kv;
  }

  /** Index of the leader, as the leader itself reports it, with its status. */
  async waitLeader(timeoutMs: number): Promise<{ index: number; term: bigint; raftIndex: bigint }> {
    return until("an etcd leader", timeoutMs, async () => {
      for (let i = 0; i < this.members.length; i++) {
        if (!alive(this.members[i]!.child)) continue;
        const s = await this.kv(i)
          .status(500)
          .catch(() => undefined);
        if (s && s.leader !== 0n && s.leader === s.memberId)
          return { index: i, term: s.raftTerm, raftIndex: s.raftIndex };
      }
      return undefined;
    });
  }

  pid(i: number): number | undefined {
    const c = this.members[i]!.child;
    return alive(c) ? c.pid : undefined;
  }

  async kill(i: number): Promise<void> {
    const c = this.members[i]!.child;
    if (c) await reaper.kill(c, "SIGKILL");
  }

  async stop(): Promise<void> {
    for (const m of this.members) m.kv?.close();
    for (let i = 0; i < this.members.length; i++) await this.kill(i);
    reaper.removeDir(this.dir);
  }

  logs(i: number): string {
    return this.members[i]!.child?.output.join("").trim().split("\n").slice(-15).join("\n") ?? "";
  }
}

const VALUE = Buffer.alloc(64, 0x61);

async function upEtcd(): Promise<System> {
  const etcd = new BenchEtcd();
  const down = (): Promise<void> =>
    etcd.stop().catch((e: unknown) => console.error(`etcd cleanup: ${String(e)}`));
  try {
    await etcd.init(3);
    for (let i = 0; i < 3; i++) etcd.start(i);
    const t0 = performance.now();
    let lead: { index: number; term: bigint };
    try {
      lead = await etcd.waitLeader(30_000);
    } catch (e) {
      for (let i = 0; i < 3; i++) console.error(`--- etcd m${i + 1} output:\n${etcd.logs(i)}`);
      throw e;
    }
    const leaderPort = etcd.members[lead.index]!.clientPort;
    log(
      `etcd: 3 members up, leader ${etcd.members[lead.index]!.name} at 127.0.0.1:${leaderPort} after ` +
        `${fmt(performance.now() - t0, 0)} ms (data in ${etcd.dir})`,
    );
    const kvs = Array.from({ length: CLIENTS }, () => new EtcdKv(`127.0.0.1:${leaderPort}`));
    const maxC = Math.max(...CONCURRENCY);
    const reqs = Array.from({ length: maxC }, (_, w) => putRequest(`bench/w${w}`, VALUE));
    const sampler = new CpuSampler(
      cpuTargets(() =>
        etcd.members.map((m, i) => ({
          tag: i === lead.index ? `etcd leader (${m.name})` : `etcd follower (${m.name})`,
          pid: etcd.pid(i),
        })),
      ),
    );
    return {
      name: "etcd",
      note:
        "etcd: a put that reaches a follower while the dead leader is still its leader is forwarded and lost; " +
        `it waits out the attempt deadline (--attempt-ms ${ATTEMPT_MS}) before the writer moves on, which is ` +
        "why 'to next success' can be about that deadline. 'to new leader' is the Raft-level comparison.",
      async warm(c, ms) {
        await runLoad(c, 0, ms, (w) => kvs[w % CLIENTS]!.put(reqs[w]!));
      },
      async measure(c) {
        const r = await runLoad(c, WARMUP_MS, DURATION_MS, (w) => kvs[w % CLIENTS]!.put(reqs[w]!), {
          sampler,
        });
        log(`etcd c=${c}: ${describe(r)}`);
        return r;
      },
      async failover() {
        closeAll(kvs);
        return etcdFailover(etcd);
      },
      async down() {
        closeAll(kvs);
        await down();
      },
    };
  } catch (e) {
    await down();
    throw e;
  }
}

async function etcdFailover(etcd: BenchEtcd): Promise<FailoverRound[]> {
  const n = etcd.members.length;
  const target = Array.from({ length: FAILOVER_CONC }, () => 0);
  let stop = false;
  let lastOk = 0;
  let errors = 0;
  let watch: { afterTerm: bigint; resolve: (t: number) => void } | undefined;
  // Each writer sends to its member, moving on to the next one after a failure, with the same
  // back-off as LedgerClient (20 ms doubling to 100 ms). Followers forward puts to the leader.
  const worker = async (w: number): Promise<void> => {
    const req = putRequest(`bench/failover/w${w}`, VALUE);
    let backoff = 20;
    while (!stop) {
      try {
        const res = await etcd.kv(target[w]!).put(req);
        backoff = 20;
        const t = performance.now();
        lastOk = t;
        const term = putResponseTerm(res);
        if (watch && term > watch.afterTerm) {
          watch.resolve(t);
          watch = undefined;
        }
      } catch {
        errors++;
        target[w] = (target[w]! + 1) % n;
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 100);
      }
    }
  };
  const lead0 = await etcd.waitLeader(10_000);
  target.fill(lead0.index);
  const workers = Array.from({ length: FAILOVER_CONC }, (_, w) => worker(w));
  const rounds: FailoverRound[] = [];
  try {
    for (let round = 1; round <= FAILOVERS; round++) {
      const lead = await etcd.waitLeader(20_000);
      target.fill(lead.index); // like LedgerClient, which follows the leader
      await until("puts flowing", 20_000, () =>
        Promise.resolve(performance.now() - lastOk < 100 && lastOk > 0 ? true : undefined),
      );
      const old = lead.index;
      const survivors = [0, 1, 2].filter((i) => i !== old);
      const oldId = (await etcd.kv(old).status()).memberId;
      const success = new Promise<number>((resolve) => {
        watch = { afterTerm: lead.term, resolve };
      });
      const tKill = performance.now();
      const killed = etcd.kill(old);
      const newLeader = until(
        "a new etcd leader",
        20_000,
        async () => {
          for (const i of survivors) {
            const s = await etcd
              .kv(i)
              .status(500)
              .catch(() => undefined);
            if (s && s.leader !== 0n && s.leader !== oldId) {
              const who = s.leader === s.memberId ? i : survivors.find((j) => j !== i)!;
              return { t: performance.now(), name: etcd.members[who]!.name };
            }
          }
          return undefined;
        },
        20,
      );
      const [tOk, nl] = await Promise.all([
        withTimeout(success, 30_000, "a put after the leader was killed"),
        newLeader,
        killed,
      ]);
      const r: FailoverRound = {
        toSuccessMs: tOk - tKill,
        toLeaderMs: nl.t - tKill,
        from: etcd.members[old]!.name,
        to: nl.name,
      };
      rounds.push(r);
      log(
        `etcd failover ${round}/${FAILOVERS}: killed leader ${r.from} (term ${lead.term}); new leader ${r.to} ` +
          `seen after ${fmt(r.toLeaderMs, 0)} ms; next put after ${fmt(r.toSuccessMs, 0)} ms`,
      );
      etcd.members[old]!.kv?.close();
      etcd.members[old]!.kv = undefined;
      etcd.start(old);
      await until("the restarted etcd member to catch up", 30_000, async () => {
        const l = await etcd.waitLeader(5_000);
        const s = await etcd.kv(old).status(500);
        return s.leader !== 0n && s.appliedIndex >= l.raftIndex ? true : undefined;
      });
      await sleep(300);
    }
  } finally {
    stop = true;
    await Promise.allSettled(workers);
  }
  log(`etcd failover: ${errors} failed puts during the runs (each retried on the next member)`);
  return rounds;
}

// ------------------------------------------------------------------------------------ bare grpc-js

async function upBare(): Promise<System> {
  const server = spawnBounded("grpc-bare", process.execPath, [
    ...NODE_OPTIONS,
    "--import",
    "tsx",
    BARE_GRPC_MAIN,
    "--listen",
    "127.0.0.1:0",
  ]);
  try {
    const port = await until("the bare gRPC server", 30_000, () => {
      if (server.proc.exitCode !== null || server.proc.signalCode !== null)
        throw new Error(`bare gRPC server exited:\n${server.output.join("")}`);
      return Promise.resolve(announcedPort(server));
    });
    log(`bare grpc-js server up at 127.0.0.1:${port}`);
    const clients = Array.from(
      { length: CLIENTS },
      () => new LedgerClient({ endpoints: [`127.0.0.1:${port}`] }),
    );
    const sampler = new CpuSampler(cpuTargets(() => [{ tag: "grpc-js bare server", pid: server.pid }]));
    const lease = leaseOp(clients, "bare");
    return {
      name: "bare",
      async warm(c, ms) {
        await runLoad(c, 0, ms, lease);
      },
      async measure(c) {
        const r = await runLoad(c, WARMUP_MS, DURATION_MS, lease, { sampler });
        log(`bare grpc-js c=${c}: ${describe(r)}`);
        return r;
      },
      down() {
        closeAll(clients);
        server.proc.kill("SIGKILL");
        return Promise.resolve();
      },
    };
  } catch (e) {
    server.proc.kill("SIGKILL");
    throw e;
  }
}

// ------------------------------------------------------------------------------------------ report

function describe(r: LoadResult): string {
  const cpu = r.cpu ? ` | cpu ${cpuText(r.cpu)}` : "";
  const err = r.errors > 0 ? ` | ${r.errors} errors (first: ${r.firstError})` : "";
  return `${fmt(r.opsPerSec, 0)} ops/s, p50 ${fmt(r.p50, 2)} ms, p99 ${fmt(r.p99, 2)} ms${err}${cpu}`;
}

function cpuText(c: CpuWindow): string {
  const parts = [...c.perProcess].map(([tag, pct]) => `${tag} ${fmt(pct, 0)}%`);
  return `${parts.join(", ")}; machine ${fmt(c.machineBusy, 0)}% of ${cores()} cores`;
}

function cores(): number {
  return availableParallelism();
}

/** Which process limits this window: one at ≥ 80% of a core (a Node process's main thread cannot use more than one). */
function saturation(c: CpuWindow | undefined): string {
  if (!c) return "-";
  const top = [...c.perProcess].sort((a, b) => b[1] - a[1])[0];
  if (!top) return "-";
  if (c.machineBusy >= 90)
    return `machine (${fmt(c.machineBusy, 0)}% of all cores; top: ${top[0]} ${fmt(top[1], 0)}%)`;
  if (top[1] >= 80) return `${top[0]} (${fmt(top[1], 0)}% of a core)`;
  if (top[1] >= 65) return `close: ${top[0]} at ${fmt(top[1], 0)}% of a core`;
  return `none (top: ${top[0]} ${fmt(top[1], 0)}%): latency-bound`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows
    .map((r, ri) => {
      const line = r
        .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
        .join("  ");
      return ri === 0 ? `${line}\n${widths.map((w) => "-".repeat(w)).join("  ")}` : line;
    })
    .join("\n");
}

function report(ledger: SystemResult, etcd: SystemResult | undefined, bare?: SystemResult): void {
  console.log("");
  console.log(
    `== LeaseSegment (ledger) vs synced Put (etcd ${etcdVersion() ?? "-"}): 3 nodes on 127.0.0.1, fsync on, ` +
      `${DURATION_MS / 1000} s per window after ${WARMUP_MS / 1000} s warm-up, ${CLIENTS} client(s), against the leader; ` +
      `each row the median of ${ROUNDS} round(s), systems measured in rotating order`,
  );
  const rows: string[][] = [
    ["concurrency", "ledger ops/s", "p50 ms", "p99 ms", "etcd ops/s", "p50 ms", "p99 ms", "ledger/etcd"],
  ];
  for (let i = 0; i < ledger.rows.length; i++) {
    const l = ledger.rows[i]!;
    const e = etcd?.rows[i];
    rows.push([
      String(l.concurrency),
      fmt(l.opsPerSec, 0),
      fmt(l.p50, 2),
      fmt(l.p99, 2),
      e ? fmt(e.opsPerSec, 0) : "-",
      e ? fmt(e.p50, 2) : "-",
      e ? fmt(e.p99, 2) : "-",
      e ? `${fmt(l.opsPerSec / e.opsPerSec, 2)}x` : "-",
    ]);
  }
  console.log(table(rows));
  if (bare && bare.rows.length > 0) {
    console.log("");
    console.log(
      "== The grpc-js ceiling: a bare grpc-js server answering LeaseSegment at once (no Raft, no disk), same client",
    );
    const b: string[][] = [
      ["concurrency", "bare ops/s", "p50 ms", "server CPU ms/op", "ledger/bare", "etcd/bare"],
    ];
    for (let i = 0; i < bare.rows.length; i++) {
      const r = bare.rows[i]!;
      const l = ledger.rows[i];
      const e = etcd?.rows[i];
      const pct = [...(r.cpu?.perProcess ?? [])].find(([tag]) => tag.includes("bare"))?.[1];
      b.push([
        String(r.concurrency),
        fmt(r.opsPerSec, 0),
        fmt(r.p50, 2),
        pct === undefined || r.opsPerSec === 0 ? "-" : fmt((10 * pct) / r.opsPerSec, 3),
        l ? `${fmt(l.opsPerSec / r.opsPerSec, 2)}x` : "-",
        e ? `${fmt(e.opsPerSec / r.opsPerSec, 2)}x` : "-",
      ]);
    }
    console.log(table(b));
  }
  console.log("");
  console.log("== What saturates (CPU over each measured window, % of one core)");
  const sat: string[][] = [["system", "concurrency", "leader CPU ms/op", "client CPU ms/op", "limited by"]];
  for (const s of [ledger, etcd]) {
    if (!s) continue;
    for (const r of s.rows) {
      sat.push([
        s.name,
        String(r.concurrency),
        cpuMsPerOp(r, (t) => t.includes("leader")),
        cpuMsPerOp(r, (t) => t === "bench client"),
        saturation(r.cpu),
      ]);
    }
  }
  console.log(table(sat));
  for (const s of [ledger, etcd]) {
    if (!s) continue;
    for (const r of s.rows) if (r.cpu) console.log(`  ${s.name} c=${r.concurrency}: ${cpuText(r.cpu)}`);
  }
  if (ledger.rows.some((r) => r.diag)) {
    console.log("");
    console.log("== Ledger Raft loop over each window (from the nodes' /metrics)");
    for (const r of ledger.rows) if (r.diag) console.log(`  c=${r.concurrency}: ${r.diag}`);
  }
  for (const s of [ledger, etcd]) {
    if (!s || s.failovers.length === 0) continue;
    console.log("");
    console.log(
      `== Failover (${s.name}): SIGKILL of the leader with ${FAILOVER_CONC} writers (attempt deadline ${ATTEMPT_MS} ms); ` +
        "ms to the next write committed in a newer term, and to a survivor reporting the new leader",
    );
    const f: string[][] = [["round", "killed", "new leader", "to new leader ms", "to next success ms"]];
    s.failovers.forEach((r, i) =>
      f.push([String(i + 1), r.from, r.to, fmt(r.toLeaderMs, 0), fmt(r.toSuccessMs, 0)]),
    );
    f.push([
      "median",
      "",
      "",
      fmt(median(s.failovers.map((r) => r.toLeaderMs)), 0),
      fmt(median(s.failovers.map((r) => r.toSuccessMs)), 0),
    ]);
    console.log(table(f));
  }
  for (const s of [ledger, etcd]) if (s?.note && s.failovers.length > 0) console.log(`\n${s.note}`);
}

/** CPU ms per operation of the first process whose tag matches, over a window ("-" if none). */
function cpuMsPerOp(r: LoadResult, match: (tag: string) => boolean): string {
  const pct = [...(r.cpu?.perProcess ?? [])].find(([tag]) => match(tag))?.[1];
  return pct === undefined || r.opsPerSec === 0 ? "-" : fmt((10 * pct) / r.opsPerSec, 3);
}

/** This checkout's ledger against the one of --baseline, measured in the same rounds. */
function reportBaseline(ledger: SystemResult, base: SystemResult): void {
  console.log(`\n== This ledger against the one in ${BASELINE_DIR} (same rounds, same client)`);
  const rows: string[][] = [
    ["concurrency", "ledger ops/s", "base ops/s", "ledger/base", "leader CPU ms/op", "base leader CPU ms/op"],
  ];
  const leaderMs = (r: LoadResult): string => cpuMsPerOp(r, (t) => t.includes("leader"));
  ledger.rows.forEach((r, i) => {
    const b = base.rows[i]!;
    rows.push([
      String(r.concurrency),
      fmt(r.opsPerSec, 0),
      fmt(b.opsPerSec, 0),
      b.opsPerSec > 0 ? `${fmt(r.opsPerSec / b.opsPerSec, 2)}x` : "-",
      leaderMs(r),
      leaderMs(b),
    ]);
  });
  console.log(table(rows));
}

function etcdVersion(): string | undefined {
  const r = spawnSync("etcd", ["--version"], { encoding: "utf8" });
  return r.status === 0 ? /etcd Version: (\S+)/.exec(r.stdout)?.[1] : undefined;
}

function etcdOnPath(): boolean {
  return (process.env.PATH ?? "").split(":").some((d) => d !== "" && existsSync(join(d, "etcd")));
}

// ------------------------------------------------------------------------------------------ main

/** With --trace-gc and --logs: each process's collections, from its log. */
function reportGc(dir: string): void {
  const rows: string[][] = [];
  for (const f of readdirSync(dir)
    .filter((n) => n.endsWith(".log"))
    .sort()) {
    const g = gcSummary(readFileSync(join(dir, f), "utf8"));
    if (!g) continue;
    rows.push([
      f.slice(0, -4),
      fmt(g.scavengesPerS),
      fmt(g.promotedMBps),
      String(g.markCompacts),
      fmt(g.maxScavengeMs),
      fmt(g.maxMarkCompactMs),
    ]);
  }
  console.log("\n== Garbage collection under load (--trace-gc, main isolate; logs in " + dir + ")");
  console.log(
    table([
      ["process", "scavenges/s", "promoted MB/s", "mark-compacts", "max scavenge ms", "max mark-compact ms"],
      ...rows,
    ]),
  );
}

async function main(): Promise<void> {
  const tStart = performance.now();
  log(
    `node ${process.version}, ${cores()} cores; concurrency ${CONCURRENCY.join("/")}, ` +
      `${DURATION_MS / 1000} s + ${WARMUP_MS / 1000} s warm-up per row, ${CLIENTS} client(s), lease size ${LEASE_SIZE}` +
      (HAVE_SETPRIV ? "" : " (setpriv missing: children die only on a clean exit of this script)"),
  );
  const idle = await machineBusyOver(1_000);
  const busyNote =
    idle > 15
      ? `WARNING: the machine was already ${fmt(idle, 0)}% busy before the run (other processes): ` +
        "the figures below are depressed and noisy; run again on a quiet machine"
      : undefined;
  log(`machine ${fmt(idle, 0)}% busy before the run${busyNote ? ` — ${busyNote}` : ""}`);
  const systems: System[] = [];
  try {
    const ledgerSys = await upLedger();
    systems.push(ledgerSys);
    if (PROFILE_DIR) {
      const ledger: SystemResult = { name: "ledger", rows: [], failovers: [], note: undefined };
      if (SETTLE_MS > 0) await ledgerSys.warm(Math.max(...CONCURRENCY), SETTLE_MS);
      for (const c of CONCURRENCY) ledger.rows.push(await ledgerSys.measure(c));
      // Only the measured windows count (start-up, compilation and warm-up left out).
      const spots = await ledgerSys.profile!([ledger.rows[0]!.windowUs[0], ledger.rows.at(-1)!.windowUs[1]]);
      report(ledger, undefined);
      console.log(
        `\n== Leader CPU profile (${spots.file}): busy ${fmt(spots.busyMs, 0)} ms, idle ${fmt(spots.idleMs, 0)} ms` +
          " (measured windows only)",
      );
      const rows: string[][] = [["self ms", "% of busy", "function", "location"]];
      for (const x of spots.spots)
        rows.push([fmt(x.selfMs, 0), fmt(x.percent, 1), x.functionName, x.location]);
      console.log(table(rows));
      console.log("\n== Self time by file or package");
      const files: string[][] = [["self ms", "% of busy", "file"]];
      for (const f of spots.byFile) files.push([fmt(f.selfMs, 0), fmt(f.percent, 1), f.file]);
      console.log(table(files));
      return;
    }
    if (args["no-etcd"]) {
      log("etcd: skipped (--no-etcd)");
    } else if (!etcdOnPath()) {
      log(
        "etcd: not found on PATH; skipping the etcd comparison. Install it with `apt-get install -y etcd-server` " +
          "(Debian) and run again.",
      );
    } else {
      systems.push(await upEtcd());
    }
    if (!args["no-bare"]) systems.push(await upBare());
    if (BASELINE_DIR)
      systems.push(await upLedger("base", join(BASELINE_DIR, "packages", "ledger", "src", "main.ts")));
    // Node processes keep getting faster for about 20 s after start (the optimizing compiler
    // catches up with the hot paths): a fresh ledger measured 256, 343, 395 and 489 leases/s in
    // four back-to-back windows at concurrency 1. Every system gets the same untimed load first,
    // at the highest concurrency, so the rounds compare steady states.
    if (SETTLE_MS > 0) {
      log(
        `settling: ${SETTLE_MS / 1000} s of untimed load at concurrency ${Math.max(...CONCURRENCY)} per system`,
      );
      for (const sys of systems) await sys.warm(Math.max(...CONCURRENCY), SETTLE_MS);
    }
    // All systems stay up (idle ones cost about 1% of a core); every round measures each of them
    // at each concurrency, in an order that rotates, so noise on these shared machines falls on
    // all of them alike. The row kept is the round with the median ops/s.
    const windows = new Map<string, LoadResult[][]>(systems.map((x) => [x.name, CONCURRENCY.map(() => [])]));
    for (let round = 0; round < ROUNDS; round++) {
      if (ROUNDS > 1) log(`round ${round + 1}/${ROUNDS}`);
      for (let ci = 0; ci < CONCURRENCY.length; ci++) {
        for (let k = 0; k < systems.length; k++) {
          const sys = systems[(k + round + ci) % systems.length]!;
          windows.get(sys.name)![ci]!.push(await sys.measure(CONCURRENCY[ci]!));
        }
      }
    }
    const results = new Map<string, SystemResult>();
    for (const sys of systems) {
      const rows = windows.get(sys.name)!.map((ws) => {
        const sorted = [...ws].sort((a, b) => a.opsPerSec - b.opsPerSec);
        return sorted[Math.floor((sorted.length - 1) / 2)]!;
      });
      const failovers = FAILOVERS > 0 && sys.failover ? await sys.failover() : [];
      results.set(sys.name, { name: sys.name, rows, failovers, note: sys.note });
    }
    const ledger = results.get("ledger")!;
    const etcd = results.get("etcd");
    const bare = results.get("bare");
    report(ledger, etcd, bare);
    const base = results.get("base");
    if (base) reportBaseline(ledger, base);
  } finally {
    for (const sys of systems.reverse()) await sys.down();
  }
  if (busyNote) console.log(`\n${busyNote}`);
  if (args.logs !== undefined && NODE_OPTIONS.includes("--trace-gc")) reportGc(resolve(args.logs));
  console.log(`\ntotal run time ${fmt((performance.now() - tStart) / 1000, 0)} s`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  },
);
