// The ledger as a system under test: three real processes on loopback, LeaseSegment load, failovers.
import {
  CpuSampler,
  alive,
  fmt,
  freePort,
  hotSpots,
  log,
  runLoad,
  scrapeMetrics,
  sleep,
  until,
  withTimeout,
} from "../support.js";
import type { Child } from "../support.js";
import { LedgerClient } from "@dispenser/ledger";
import type { ClusterStatusResponse } from "@dispenser/proto";
import { join } from "node:path";
import {
  ATTEMPT_MS,
  CLIENTS,
  DURATION_MS,
  FAILOVERS,
  FAILOVER_CONC,
  LEASE_SIZE,
  LEDGER_MAIN,
  NODE_OPTIONS,
  PROFILE_DIR,
  REPO,
  RUN_TAG,
  SEQUENCE,
  TICK_ARGS,
  WARMUP_MS,
  reaper,
  spawnBounded,
} from "./config.js";
import { describe } from "./report.js";
import type { FailoverRound, System } from "./systems.js";
import { closeAll, cpuTargets } from "./systems.js";

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

/** The measured operation: a LeaseSegment with a fresh request id, through the worker's client. */
export function leaseOp(clients: readonly LedgerClient[], tag: string): (worker: number) => Promise<unknown> {
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

export async function upLedger(name = "ledger", main = LEDGER_MAIN): Promise<System> {
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
