import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { LinkMode } from "./tcp-proxy.js";
import { TcpProxy } from "./tcp-proxy.js";

const REPO = resolve(import.meta.dirname, "..", "..");
const MAIN = join(REPO, "packages", "ledger", "src", "main.ts");

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface LedgerProcess {
  id: number;
  port: number;
  /** The Peer service's own port (with `peerPorts`), else `port`. */
  peerPort: number;
  dataDir: string;
  proc: ChildProcess | undefined;
  output: string[];
}

/**
 * A ledger cluster of real processes on loopback. Peer traffic from node i to node j goes through
 * a TCP proxy of its own, so any link can be blackholed or reset without touching a process.
 * Clients talk to the nodes directly.
 */
export class LedgerCluster {
  readonly dir = mkdtempSync(join(tmpdir(), "ledger-cluster-"));
  readonly nodes = new Map<number, LedgerProcess>();
  /** "i>j" → proxy carrying i's traffic to j. */
  readonly proxies = new Map<string, TcpProxy>();
  readonly clusterId = `test-${process.pid}-${Date.now()}`;

  /**
   * `peerPorts`: every node serves its Peer service on a port of its own (--peer-listen); the
   * proxies carry that traffic, and clients reach `address(id)` directly.
   */
  constructor(
    readonly ids: readonly number[] = [1, 2, 3],
    readonly o: { readonly peerPorts?: boolean } = {},
  ) {}

  async init(): Promise<void> {
    for (const id of this.ids) {
      const port = await freePort();
      this.nodes.set(id, {
        id,
        port,
        peerPort: this.o.peerPorts ? await freePort() : port,
        dataDir: join(this.dir, `node-${id}`),
        proc: undefined,
        output: [],
      });
    }
    for (const a of this.ids) {
      for (const b of this.ids) {
        if (a === b) continue;
        const p = new TcpProxy(this.nodes.get(b)!.peerPort);
        await p.start();
        this.proxies.set(`${a}>${b}`, p);
      }
    }
  }

  /** Peer list as node `id` sees it: itself directly, the others through its proxies. */
  peersOf(id: number, members: readonly number[] = this.ids): string {
    return members
      .map(
        (j) =>
          `${j}=127.0.0.1:${j === id ? this.nodes.get(j)!.peerPort : this.proxies.get(`${id}>${j}`)!.port}`,
      )
      .join(",");
  }

  /** Where node `id`'s Peer service listens (its client address without `peerPorts`). */
  peerAddress(id: number): string {
    return `127.0.0.1:${this.nodes.get(id)!.peerPort}`;
  }

  /** Every member's client address (what a LedgerClient or an edge's --ledger takes). */
  addresses(): string[] {
    return this.ids.map((i) => this.address(i));
  }

  address(id: number): string {
    return `127.0.0.1:${this.nodes.get(id)!.port}`;
  }

  /** Start node `id`; `members` are the initial members it is told about (default: all ids). */
  start(id: number, extra: string[] = [], members: readonly number[] = this.ids): void {
    const n = this.nodes.get(id)!;
    if (n.proc && n.proc.exitCode === null && n.proc.signalCode === null)
      throw new Error(`node ${id} is running`);
    const args = [
      "--import",
      "tsx",
      MAIN,
      "--id",
      String(id),
      "--cluster-id",
      this.clusterId,
      "--data-dir",
      n.dataDir,
      "--listen",
      `127.0.0.1:${n.port}`,
      ...(this.o.peerPorts
        ? [
            "--peers",
            members.map((j) => `${j}=${this.address(j)}`).join(","),
            "--peer-addresses",
            this.peersOf(id, members),
            "--peer-listen",
            this.peerAddress(id),
          ]
        : ["--peers", this.peersOf(id, members)]),
      "--tick-ms",
      "50",
      "--log-level",
      "warn",
      ...extra,
    ];
    const proc = spawn(process.execPath, args, { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
    const keep = (d: Buffer): void => {
      n.output.push(d.toString());
      if (n.output.length > 200) n.output.splice(0, n.output.length - 200);
    };
    proc.stdout?.on("data", keep);
    proc.stderr?.on("data", keep);
    n.proc = proc;
  }

  startAll(extra: string[] = ["--bootstrap"]): void {
    for (const id of this.ids) this.start(id, extra);
  }

  signal(id: number, sig: NodeJS.Signals): void {
    this.nodes.get(id)!.proc?.kill(sig);
  }

  async waitExit(id: number, timeoutMs = 10_000): Promise<number | string | null> {
    const p = this.nodes.get(id)!.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return p?.exitCode ?? p?.signalCode ?? null;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`node ${id} did not exit`)), timeoutMs);
      p.once("exit", (code, sig) => {
        clearTimeout(t);
        resolve(code ?? sig);
      });
    });
  }

  async kill(id: number): Promise<void> {
    this.signal(id, "SIGKILL");
    await this.waitExit(id);
  }

  /** Cut (or restore) every link to and from `id`. */
  setLinks(id: number, mode: LinkMode): void {
    for (const [key, p] of this.proxies) {
      const [a, b] = key.split(">").map(Number);
      if (a === id || b === id) p.setMode(mode);
    }
  }

  async stop(): Promise<void> {
    for (const n of this.nodes.values()) {
      if (n.proc && n.proc.exitCode === null && n.proc.signalCode === null) {
        n.proc.kill("SIGCONT");
        n.proc.kill("SIGKILL");
        await this.waitExit(n.id).catch(() => undefined);
      }
    }
    for (const p of this.proxies.values()) await p.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  logs(id: number): string {
    return this.nodes.get(id)!.output.join("");
  }
}
