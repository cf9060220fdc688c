// The nemesis: one fault at a time, chosen by a seeded generator, so `--seed` replays a run's
// schedule (the faults and their order and lengths; what the processes do under them still
// varies with timing). Each fault is applied, held, then healed; start and end go to the history.
import { LedgerClient } from "@dispenser/ledger";
import type { History } from "./history.js";
import type { ThreeDcs } from "../support/three-dc.js";

/** mulberry32: a small, good-enough seeded generator. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Fault {
  readonly name: string;
  readonly weight: number;
  /** Apply, hold, heal; resolves with what it hit. */
  run(hold: number): Promise<string>;
}

export class Nemesis {
  private readonly rand: () => number;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private readonly lc: LedgerClient;
  private readonly faults: Fault[];

  constructor(
    dcs: ThreeDcs,
    private readonly history: History,
    seed: number,
    private readonly intervalMs: number,
  ) {
    this.rand = seeded(seed);
    this.lc = new LedgerClient({ endpoints: dcs.ledger.addresses(), totalTimeoutMs: 3_000 });
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(this.rand() * xs.length)]!;
    const ledger = dcs.ledger;
    /** The leader two times in three (when one is known), else any voter. */
    const victim = async (): Promise<number> => {
      const lead = await this.lc
        .call("clusterStatus", {})
        .then((s) => Number(s.leaderId))
        .catch(() => 0);
      return lead !== 0 && this.rand() < 2 / 3 ? lead : pick([1, 2, 3]);
    };
    this.faults = [
      {
        name: "kill-ledger",
        weight: 3,
        run: async (hold) => {
          const id = await victim();
          await ledger.kill(id);
          await sleep(hold);
          ledger.start(id);
          return `node ${id}`;
        },
      },
      {
        name: "pause-ledger",
        weight: 2,
        run: async (hold) => {
          const id = await victim();
          ledger.signal(id, "SIGSTOP");
          await sleep(hold);
          ledger.signal(id, "SIGCONT");
          return `node ${id}`;
        },
      },
      {
        name: "kill-edge",
        weight: 2,
        run: async (hold) => {
          const e = pick(dcs.edges);
          await e.process.stop("SIGKILL");
          await sleep(Math.min(hold, 1_500));
          await e.process.start();
          return `dc ${e.dc} edge :${e.process.grpcPort}`;
        },
      },
      {
        name: "kill-redis-master",
        weight: 1,
        run: async (hold) => {
          const dc = pick([0, 1, 2]);
          const redis = dcs.redis[dc]!;
          const port = await redis.masterOf(Math.floor(this.rand() * 16384));
          await redis.kill(port, "SIGKILL");
          await sleep(hold);
          await redis.restart(port);
          return `dc ${dc} redis :${port}`;
        },
      },
      {
        name: "cut-dc",
        weight: 2,
        run: async (hold) => {
          const dc = pick([0, 1, 2]);
          dcs.setLinks(dc, "blackhole");
          await sleep(hold);
          dcs.setLinks(dc, "pass");
          return `dc ${dc}`;
        },
      },
      {
        name: "partition-dcs",
        weight: 2,
        run: async (hold) => {
          const a = pick([0, 1, 2]);
          const b = pick([0, 1, 2].filter((x) => x !== a));
          const links = [`${a + 1}>${b + 1}`, `${b + 1}>${a + 1}`].map((k) => ledger.proxies.get(k)!);
          for (const p of links) p.setMode("blackhole");
          await sleep(hold);
          for (const p of links) p.setMode("pass");
          return `dc ${a} | dc ${b}`;
        },
      },
      {
        name: "transfer-leader",
        weight: 1,
        run: async () => {
          const lead = await this.lc.call("clusterStatus", {}).then((s) => Number(s.leaderId));
          const to = pick([1, 2, 3].filter((x) => x !== lead));
          await this.lc.call("transferLeader", { to: BigInt(to) }).catch(() => undefined);
          return `${lead} -> ${to}`;
        },
      },
    ];
  }

  start(): void {
    this.loop = (async () => {
      const total = this.faults.reduce((s, f) => s + f.weight, 0);
      while (!this.stopping) {
        await sleep(this.intervalMs * (0.5 + this.rand()));
        if (this.stopping) break;
        let r = this.rand() * total;
        const fault = this.faults.find((f) => (r -= f.weight) < 0) ?? this.faults[0]!;
        const hold = 1_000 + Math.floor(this.rand() * 3_000);
        this.history.nemesis(fault.name, "", "start");
        const target = await fault.run(hold).catch((e: unknown) => `failed: ${String(e)}`);
        this.history.nemesis(fault.name, target, "end");
      }
    })();
  }

  /** Stop after the fault under way heals. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.loop;
    this.lc.close();
  }
}
