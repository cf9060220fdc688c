// `dispenser dev --start-redis`: a small Redis Cluster per datacenter for trying the DC plane on one
// machine: one master holding every slot and one replica (the reserve confirms each carve on a
// replica, so one is the least it can run with). Real redis-server processes from PATH, without
// persistence: a restart brings them back empty, which the reserve survives by design (a lost pool
// is refilled from fresh ledger windows, above everything it ever held).
import type { ChildProcess } from "node:child_process";
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Redis } from "ioredis";
import { CliError, EXIT } from "../errors.js";

/** How long a dev Redis Cluster may take to form (or to come back) before start() gives up. */
const FORM_TIMEOUT_MS = 20_000;

let haveSetpriv: boolean | undefined;
/** util-linux setpriv, to tie a server's life to this process (asked once, at the first server). */
function setprivOnPath(): boolean {
  haveSetpriv ??= spawnSync("setpriv", ["--help"], { stdio: "ignore" }).status === 0;
  return haveSetpriv;
}

export function redisServerOnPath(): boolean {
  return spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class DevRedisCluster {
  private readonly procs: ChildProcess[] = [];
  private readonly output: string[] = [];

  /** `ports`: the master's, then the replica's. */
  constructor(
    private readonly dir: string,
    readonly ports: readonly [number, number],
  ) {}

  /** host:port of both nodes, for an edge's --redis. */
  nodes(): string[] {
    return this.ports.map((p) => `127.0.0.1:${p}`);
  }

  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    for (const port of this.ports) this.launch(port);
    const [master, replica] = this.ports.map(
      (port) => new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 1 }),
    ) as [Redis, Redis];
    for (const c of [master, replica]) c.on("error", () => undefined);
    try {
      const until = Date.now() + FORM_TIMEOUT_MS;
      const waitFor = async (what: string, f: () => Promise<boolean>): Promise<void> => {
        for (;;) {
          if (this.procs.some((p) => p.exitCode !== null || p.signalCode !== null))
            throw new CliError(`redis-server exited: ${this.output.join("").slice(-500)}`, EXIT.server);
          if (await f().catch(() => false)) return;
          if (Date.now() > until)
            throw new CliError(`the dev Redis Cluster in ${this.dir}: ${what} timed out`, EXIT.server);
          await sleep(100);
        }
      };
      await waitFor(
        "start",
        async () => (await master.ping()) === "PONG" && (await replica.ping()) === "PONG",
      );
      // nodes.conf kept from an earlier run: the cluster is already formed.
      const slots = (await master.call("CLUSTER", "SLOTS")) as unknown[];
      if (slots.length === 0) {
        await master.call("CLUSTER", "ADDSLOTSRANGE", "0", "16383");
        await replica.call("CLUSTER", "MEET", "127.0.0.1", String(this.ports[0]));
        const id = (await master.call("CLUSTER", "MYID")) as string;
        await waitFor("the replica meeting the master", async () =>
          ((await replica.call("CLUSTER", "NODES")) as string).includes(id),
        );
        await replica.call("CLUSTER", "REPLICATE", id);
      }
      await waitFor("cluster_state:ok", async () => {
        for (const c of [master, replica])
          if (!((await c.call("CLUSTER", "INFO")) as string).includes("cluster_state:ok")) return false;
        return (await replica.info("replication")).includes("master_link_status:up");
      });
    } catch (e) {
      await this.stop();
      throw e;
    } finally {
      master.disconnect();
      replica.disconnect();
    }
  }

  private launch(port: number): void {
    const args = [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      this.dir,
      "--cluster-enabled",
      "yes",
      "--cluster-config-file",
      join(this.dir, `nodes-${port}.conf`),
      "--cluster-node-timeout",
      "3000",
      "--save",
      "",
      "--appendonly",
      "no",
    ];
    // The servers die with this process, even when it is killed (where setpriv exists: Linux).
    const p = setprivOnPath()
      ? spawn("setpriv", ["--pdeathsig", "TERM", "redis-server", ...args], {
          stdio: ["ignore", "pipe", "pipe"],
        })
      : spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
    const keep = (d: Buffer): void => {
      this.output.push(d.toString());
      if (this.output.length > 50) this.output.shift();
    };
    p.stdout?.on("data", keep);
    p.stderr?.on("data", keep);
    p.on("error", (e) => keep(Buffer.from(String(e))));
    this.procs.push(p);
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.procs.splice(0).map(
        (p) =>
          new Promise<void>((resolve) => {
            if (p.exitCode !== null || p.signalCode !== null) return resolve();
            const t = setTimeout(() => p.kill("SIGKILL"), 5_000);
            p.once("exit", () => {
              clearTimeout(t);
              resolve();
            });
            p.kill("SIGTERM");
          }),
      ),
    );
  }
}
