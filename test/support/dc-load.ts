import type { DcEdge } from "./three-dc.js";

/**
 * A steady load on edges of the three-DC harness: GETN `batch` every 100 ms on each edge (10 ×
 * batch ids/s per edge), counted per DC, every id checked against all others.
 */
export class DcLoad {
  readonly seen = new Set<string>();
  readonly served = [0, 0, 0];
  readonly failed = [0, 0, 0];
  duplicated = 0;
  private stopping = false;
  private readonly loops: Promise<void>[] = [];

  constructor(
    private readonly sequence: string,
    private readonly batch = 100,
  ) {}

  start(edges: readonly DcEdge[]): this {
    for (const e of edges) this.loops.push(this.loop(e));
    return this;
  }

  private async loop(e: DcEdge): Promise<void> {
    while (!this.stopping) {
      const t0 = performance.now();
      try {
        const ids = (await e.client.call("GETN", this.sequence, String(this.batch))) as string[];
        for (const id of ids) {
          if (this.seen.has(id)) this.duplicated++;
          this.seen.add(id);
        }
        this.served[e.dc]! += ids.length;
      } catch {
        this.failed[e.dc]! += 1;
      }
      await new Promise((r) => setTimeout(r, Math.max(0, 100 - (performance.now() - t0))));
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
  }
}
