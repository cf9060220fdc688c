// What the benchmark knows of a system under test, whichever it is: its results and how to stop it.
import type { LoadResult, ProfileSummary } from "../support.js";

export interface FailoverRound {
  /** Kill → first success committed in a newer term (what a client sees). */
  toSuccessMs: number;
  /** Kill → a survivor reports the new leader (polled every 20 ms). */
  toLeaderMs: number;
  from: string;
  to: string;
}

export interface SystemResult {
  name: string;
  rows: LoadResult[];
  failovers: FailoverRound[];
  note: string | undefined;
}

/** A system under test, up and idle between measured windows. */
export interface System {
  name: string;
  measure(concurrency: number): Promise<LoadResult>;
  /** Untimed load, so the measured windows see processes past their start-up. */
  warm(concurrency: number, ms: number): Promise<void>;
  /** Leader kills; undefined when the system has none to offer. */
  failover?(): Promise<FailoverRound[]>;
  note?: string;
  /** Ledger only: stop the nodes so they write their CPU profiles, and read the leader's. */
  profile?(windowUs: [number, number]): Promise<ProfileSummary>;
  down(): Promise<void>;
}

/** Close every client in `list` and empty it (a closed client must not be used again). */
export function closeAll(list: { close(): void }[]): void {
  for (const c of list) c.close();
  list.length = 0;
}

export function cpuTargets(
  roles: () => { tag: string; pid: number | undefined }[],
): () => Map<string, number> {
  return () => {
    const m = new Map<string, number>();
    for (const r of roles()) if (r.pid !== undefined) m.set(r.tag, r.pid);
    return m;
  };
}
