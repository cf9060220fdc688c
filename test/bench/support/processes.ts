// Child processes that never outlive the run: reaped on exit, on error and on Ctrl-C.
import type { ChildProcess, SpawnOptions } from "node:child_process";
import { spawn, spawnSync } from "node:child_process";
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { withTimeout } from "./run.js";

export { freePort } from "../../support/ledger-cluster.js";

export interface Child {
  readonly tag: string;
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Last lines of stdout and stderr. */
  readonly output: string[];
}

/**
 * Every child process and temp dir of the run. They are killed (SIGKILL) and removed on normal
 * exit, on an uncaught error, on SIGINT/SIGTERM, and when the watchdog fires.
 */
export class Reaper {
  private readonly live = new Set<Child>();
  private readonly dirs = new Set<string>();
  /** Where each child's whole output goes (DIR/<tag>.log), besides its last lines in memory. */
  private logDir: string | undefined;
  private readonly logged = new Set<string>();

  constructor(watchdogMs: number) {
    process.on("exit", () => this.reapSync());
    for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
      process.on(sig, () => {
        console.error(`\n${sig}: killing every child process and removing temp dirs`);
        process.exit(130);
      });
    }
    const t = setTimeout(() => {
      console.error(`watchdog: the run exceeded ${watchdogMs / 1000} s; killing everything`);
      process.exit(2);
    }, watchdogMs);
    t.unref();
  }

  /** Keep every child's whole stdout and stderr in `dir`/<tag>.log from now on. */
  keepLogs(dir: string): void {
    mkdirSync(dir, { recursive: true });
    this.logDir = dir;
  }

  tmpdir(prefix: string): string {
    const d = mkdtempSync(join(tmpdir(), prefix));
    this.dirs.add(d);
    return d;
  }

  removeDir(d: string): void {
    rmSync(d, { recursive: true, force: true });
    this.dirs.delete(d);
  }

  spawn(tag: string, cmd: string, args: readonly string[], opts: SpawnOptions = {}): Child {
    const proc = spawn(cmd, args, { ...opts, stdio: ["ignore", "pipe", "pipe"] });
    if (proc.pid === undefined) throw new Error(`could not start ${tag} (${cmd})`);
    const c: Child = { tag, proc, pid: proc.pid, output: [] };
    const logFile = this.logDir !== undefined ? join(this.logDir, `${tag}.log`) : undefined;
    // A run starts each log afresh; a restarted child (same tag) adds to its own.
    if (logFile !== undefined && !this.logged.has(tag)) writeFileSync(logFile, "");
    this.logged.add(tag);
    const keep = (d: Buffer): void => {
      c.output.push(d.toString());
      if (logFile !== undefined) appendFileSync(logFile, d);
      if (c.output.length > 100) c.output.splice(0, c.output.length - 100);
    };
    proc.stdout?.on("data", keep);
    proc.stderr?.on("data", keep);
    proc.on("error", (e) => c.output.push(`spawn error: ${e.message}`));
    this.live.add(c);
    proc.once("exit", () => this.live.delete(c));
    return c;
  }

  /** Send `sig` and wait for the exit. */
  async kill(c: Child, sig: NodeJS.Signals = "SIGKILL", timeoutMs = 10_000): Promise<void> {
    if (c.proc.exitCode !== null || c.proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.proc.once("exit", () => r()));
    c.proc.kill(sig);
    try {
      await withTimeout(exited, timeoutMs, `${c.tag} to exit after ${sig}`);
    } catch (e) {
      if (sig === "SIGKILL") throw e;
      c.proc.kill("SIGKILL");
      await withTimeout(exited, 5_000, `${c.tag} to exit after SIGKILL`);
    }
  }

  reapSync(): void {
    for (const c of this.live) {
      try {
        c.proc.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
    this.live.clear();
    for (const d of this.dirs) rmSync(d, { recursive: true, force: true });
    this.dirs.clear();
  }
}

export function alive(c: Child | undefined): c is Child {
  return c !== undefined && c.proc.exitCode === null && c.proc.signalCode === null;
}

/** Whether `setpriv` can make children die with this process (util-linux; missing on some hosts). */
export const HAVE_SETPRIV = spawnSync("setpriv", ["--help"], { stdio: "ignore" }).status === 0;

/** Spawn through `reaper` so that the child also dies if this process is killed outright. */
export function spawnBounded(reaper: Reaper, cwd: string, tag: string, cmd: string, argv: string[]): Child {
  return HAVE_SETPRIV
    ? reaper.spawn(tag, "setpriv", ["--pdeathsig", "KILL", cmd, ...argv], { cwd })
    : reaper.spawn(tag, cmd, argv, { cwd });
}

/** The port a child announced with a "listening <port>" line (grpc-bare-server.ts does), once it has. */
export function announcedPort(c: Child): number | undefined {
  const m = /listening (\d+)/.exec(c.output.join(""));
  return m ? Number(m[1]) : undefined;
}
