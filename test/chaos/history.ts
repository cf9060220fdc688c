// The run's history: one JSON line per event, written as it happens, so a run can be checked
// again (`pnpm chaos -- --check FILE`). Draws: an "invoke" line, then "ok" (with the id) or
// "fail" (with the error); the nemesis: "nemesis" lines with the fault and its target. Times are
// ms since the run started, on this process's monotonic clock.
import { createWriteStream, mkdirSync, readFileSync } from "node:fs";
import type { WriteStream } from "node:fs";
import { dirname } from "node:path";
import type { Draw, Ordering } from "./checkers.js";

export interface DrawStart {
  readonly sequence: string;
  readonly ordering: Ordering;
  readonly dc: number;
  readonly issuer: string;
  /** How the draw was made: resp, grpc or sdk. */
  readonly via: string;
}

type Line =
  | ({ type: "invoke"; op: number; t: number } & DrawStart)
  | { type: "ok"; op: number; t: number; id: string }
  | { type: "fail"; op: number; t: number; error: string }
  | { type: "nemesis"; t: number; fault: string; target: string; phase: "start" | "end" };

export class History {
  private readonly out: WriteStream;
  private readonly t0 = performance.now();
  private nextOp = 0;
  private readonly open = new Map<number, { start: DrawStart; t: number }>();
  /** Finished draws, for the checkers at the end. */
  readonly draws: Draw[] = [];
  readonly faults = new Map<string, number>();

  constructor(readonly file: string) {
    mkdirSync(dirname(file), { recursive: true });
    this.out = createWriteStream(file);
  }

  now(): number {
    return Math.round((performance.now() - this.t0) * 1000) / 1000;
  }

  private write(l: Line): void {
    this.out.write(`${JSON.stringify(l)}\n`);
  }

  invoke(start: DrawStart): number {
    const op = this.nextOp++;
    const t = this.now();
    this.open.set(op, { start, t });
    this.write({ type: "invoke", op, t, ...start });
    return op;
  }

  ok(op: number, id: bigint): void {
    const o = this.finish(op);
    this.write({ type: "ok", op, t: o.doneAt, id: id.toString() });
    this.draws.push({ ...o.start, invokedAt: o.t, doneAt: o.doneAt, id });
  }

  fail(op: number, error: string): void {
    const o = this.finish(op);
    this.write({ type: "fail", op, t: o.doneAt, error });
    this.draws.push({ ...o.start, invokedAt: o.t, doneAt: o.doneAt, error });
  }

  private finish(op: number): { start: DrawStart; t: number; doneAt: number } {
    const o = this.open.get(op);
    if (!o) throw new Error(`op ${op} finished twice`);
    this.open.delete(op);
    return { ...o, doneAt: this.now() };
  }

  nemesis(fault: string, target: string, phase: "start" | "end"): void {
    if (phase === "start") this.faults.set(fault, (this.faults.get(fault) ?? 0) + 1);
    this.write({ type: "nemesis", t: this.now(), fault, target, phase });
  }

  close(): Promise<void> {
    return new Promise((r) => this.out.end(r));
  }
}

/** The finished draws of a history file (draws still open at its end are left out). */
export function readHistory(file: string): Draw[] {
  const open = new Map<number, { start: DrawStart; t: number }>();
  const draws: Draw[] = [];
  for (const text of readFileSync(file, "utf8").split("\n")) {
    if (text === "") continue;
    const l = JSON.parse(text) as Line;
    if (l.type === "invoke") {
      const { type: _type, op, t, ...start } = l;
      open.set(op, { start, t });
    } else if (l.type === "ok" || l.type === "fail") {
      const o = open.get(l.op);
      if (!o) continue;
      open.delete(l.op);
      draws.push({
        ...o.start,
        invokedAt: o.t,
        doneAt: l.t,
        ...(l.type === "ok" ? { id: BigInt(l.id) } : { error: l.error }),
      });
    }
  }
  return draws;
}
