import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { connect } from "node:net";
import { join, resolve } from "node:path";
import { LedgerClient } from "@dispenser/ledger";
import type { LedgerCluster } from "./ledger-cluster.js";
import { freePort } from "./ledger-cluster.js";
import { waitForLeader } from "./ledger-helpers.js";

const REPO = resolve(import.meta.dirname, "..", "..");
const MAIN = join(REPO, "packages", "edge", "src", "main.ts");

/** An edge dispenser as a real process on loopback, restartable on the same ports. */
export class EdgeProcess {
  proc: ChildProcess | undefined;
  readonly output: string[] = [];
  respPort = 0;
  grpcPort = 0;
  metricsPort = 0;

  constructor(
    private readonly ledger: readonly string[],
    private readonly extra: string[] = [],
  ) {}

  async init(): Promise<void> {
    this.respPort = await freePort();
    this.grpcPort = await freePort();
    this.metricsPort = await freePort();
  }

  get grpcAddress(): string {
    return `127.0.0.1:${this.grpcPort}`;
  }

  /** Starts the process and waits until its RESP port accepts connections. */
  async start(): Promise<void> {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null)
      throw new Error("edge is running");
    const args = [
      "--import",
      "tsx",
      MAIN,
      "--ledger",
      this.ledger.join(","),
      "--resp-listen",
      `127.0.0.1:${this.respPort}`,
      "--grpc-listen",
      `127.0.0.1:${this.grpcPort}`,
      "--metrics-listen",
      `127.0.0.1:${this.metricsPort}`,
      "--log-level",
      "warn",
      ...this.extra,
    ];
    const proc = spawn(process.execPath, args, { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
    const keep = (d: Buffer): void => {
      this.output.push(d.toString());
      if (this.output.length > 200) this.output.splice(0, this.output.length - 200);
    };
    proc.stdout?.on("data", keep);
    proc.stderr?.on("data", keep);
    this.proc = proc;
    const until = Date.now() + 20_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`edge exited ${proc.exitCode}: ${this.output.join("")}`);
      const ok = await new Promise<boolean>((r) => {
        const s = connect(this.respPort, "127.0.0.1");
        s.once("connect", () => (s.destroy(), r(true)));
        s.once("error", () => r(false));
      });
      if (ok) return;
      if (Date.now() > until) throw new Error(`edge did not start: ${this.output.join("")}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Sends `sig` and waits for the exit; resolves with the exit code or signal. */
  async stop(sig: NodeJS.Signals = "SIGTERM", timeoutMs = 15_000): Promise<number | string | null> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return p?.exitCode ?? p?.signalCode ?? null;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`edge did not exit on ${sig}`)), timeoutMs);
      p.once("exit", (code, s) => {
        clearTimeout(t);
        resolve(code ?? s);
      });
      p.kill(sig);
    });
  }
}

/** Start every node of `ledger`, wait for its leader, then start one edge in front of it. */
export async function startLedgerAndEdge(
  ledger: LedgerCluster,
): Promise<{ lc: LedgerClient; edge: EdgeProcess }> {
  await ledger.init();
  ledger.startAll();
  const lc = new LedgerClient({ endpoints: ledger.addresses(), totalTimeoutMs: 20_000 });
  await waitForLeader(lc);
  const edge = new EdgeProcess(ledger.addresses());
  await edge.init();
  await edge.start();
  return { lc, edge };
}
