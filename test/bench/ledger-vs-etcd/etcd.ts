// etcd as a system under test: three members on loopback, synced Put load, failovers.
import {
  CpuSampler,
  EtcdKv,
  alive,
  fmt,
  freePort,
  log,
  putRequest,
  putResponseTerm,
  runLoad,
  sleep,
  until,
  withTimeout,
} from "../support.js";
import type { Child } from "../support.js";
import { join } from "node:path";
import {
  ATTEMPT_MS,
  CLIENTS,
  CONCURRENCY,
  DURATION_MS,
  FAILOVERS,
  FAILOVER_CONC,
  RUN_TAG,
  WARMUP_MS,
  reaper,
  spawnBounded,
} from "./config.js";
import { describe } from "./report.js";
import type { FailoverRound, System } from "./systems.js";
import { closeAll, cpuTargets } from "./systems.js";

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

export async function upEtcd(): Promise<System> {
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
