import type { LedgerClient } from "@dispenser/ledger";
import type { CreateSequenceRequest } from "@dispenser/proto";
import { SequenceDefinition } from "@dispenser/proto";

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A CreateSequence request: type 3 (increasing) with one datacenter unless `fields` say otherwise. */
export function createRequest(name: string, fields: Partial<SequenceDefinition> = {}): CreateSequenceRequest {
  return {
    sequence: SequenceDefinition.fromPartial({
      name,
      type: 3,
      starting: 1n,
      step: 1n,
      datacenters: 1,
      ...fields,
    }),
  };
}

/** The leader's id once the cluster has one (asking any node), or throws after `timeoutMs`. */
export async function waitForLeader(client: LedgerClient, timeoutMs = 20_000): Promise<number> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const st = await client.call("clusterStatus", {}).catch(() => undefined);
    if (st && st.leaderId !== 0n) return Number(st.leaderId);
    await sleep(100);
  }
  throw new Error("no leader elected");
}

/** Polls `f` every 100 ms until it gives a value (its errors mean "not yet"); throws after `timeoutMs`. */
export async function until<T>(
  what: string,
  f: () => Promise<T | undefined>,
  timeoutMs = 20_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch {
      // Not yet.
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/**
 * HSET <name> <fields...> through an edge's RESP port until the ledger behind it answers (it may
 * still be electing its first leader); a name that exists already counts as created.
 */
export async function createWhenUp(
  client: { call(command: string, ...args: string[]): Promise<unknown> },
  name: string,
  fields: readonly string[],
  timeoutMs = 30_000,
): Promise<void> {
  await until(
    `sequence "${name}" created through the edge`,
    () =>
      client.call("HSET", name, ...fields).then(
        () => true,
        (e: unknown) => (String(e).includes("exists") ? true : undefined),
      ),
    timeoutMs,
  );
}
