// Connects the edge to its datacenter's Redis plane: mirrors each sequence definition it serves
// (newer revisions win), reports its issued/wasted counts every interval, so INFO can show the
// whole DC, and adds its issued marks and ledger identity to what the DC's edges remember (a
// fresh edge reads them before its first lease). If Redis is down, ids keep flowing: the counts
// go stale (INFO says so) and a fresh edge learns less.
import type { Logger } from "pino";
import type { Dispenser } from "./issuing/dispenser.js";
import type { DcStats, RedisPlane } from "./redis/index.js";

export interface PlaneReporterOptions {
  readonly plane: RedisPlane;
  readonly dispenser: Dispenser;
  readonly logger: Logger;
  /** How often counts are pushed. Default 1,000 ms. */
  readonly intervalMs?: number;
}

export class PlaneReporter {
  private readonly reported = new Map<string, { generated: bigint; wasted: bigint }>();
  private readonly mirrored = new Map<string, bigint>();
  /** Per sequence, the guard mark last written to the DC's Redis. */
  private readonly guarded = new Map<string, bigint>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private failures = 0;

  constructor(private readonly o: PlaneReporterOptions) {}

  start(): void {
    this.timer = setInterval(() => {
      this.running = this.running.then(() => this.report());
    }, this.o.intervalMs ?? 1_000);
    this.timer.unref();
  }

  /** Pushes the counts one last time. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
    await this.report();
  }

  /** The DC-wide counts of a sequence, or the reason they are not available. */
  async dcStats(name: string): Promise<DcStats | string> {
    try {
      return await this.o.plane.dcStats(name, this.o.dispenser.dc, Date.now());
    } catch (e) {
      return e instanceof Error ? e.message : String(e);
    }
  }

  private async report(): Promise<void> {
    const d = this.o.dispenser;
    for (const s of d.samples()) {
      const last = this.reported.get(s.name) ?? { generated: 0n, wasted: 0n };
      const dg = s.generated - last.generated;
      const dw = s.wasted - last.wasted;
      try {
        const rev = d.revisionOf(s.name);
        if (rev !== undefined && this.mirrored.get(s.name) !== rev) {
          const def = d.definitionFields(s.name);
          if (def) await this.o.plane.mirrorDefinition(def, rev);
          this.mirrored.set(s.name, rev);
        }
        // What this edge remembers of the ledger, shared with the DC's edges (a fresh one reads it).
        const g = d.guardNote(s.name);
        if (g && g.mark > 0n && this.guarded.get(s.name) !== g.mark) {
          await this.o.plane.noteGuard(s.name, g.dc, g.identity, g.mark);
          this.guarded.set(s.name, g.mark);
        }
        if (dg === 0n && dw === 0n && this.reported.has(s.name)) continue;
        await this.o.plane.reportEdgeStats(s.name, d.dc, d.edgeId, dg, dw, Date.now());
        this.reported.set(s.name, { generated: s.generated, wasted: s.wasted });
        if (this.failures > 0) this.o.logger.info({ failures: this.failures }, "redis plane reachable again");
        this.failures = 0;
      } catch (e) {
        // A failed report may still have been applied: count it as sent only on success, and
        // accept that a timed-out increment may be counted twice in the DC totals.
        if (this.failures++ === 0) this.o.logger.warn({ err: String(e) }, "redis plane unreachable");
        return;
      }
    }
  }
}
