// Backup: the state at a linearizable read, written a slice per turn of the event loop, kept for
// a while on the node that took it and fetched in parts.
import { createHash, randomBytes } from "node:crypto";
import type { LedgerServer } from "@dispenser/proto";
import { ErrorReason } from "@dispenser/proto";
import { status } from "@grpc/grpc-js";
import { CallError } from "./common.js";
import type { LedgerService, Unary } from "./ledger-service.js";

/** Names a backup writes per turn of the event loop. */
const BACKUP_SLICE_NAMES = 2_000;
/** A backup is answered in parts of at most this many bytes (messages are capped at 64 MiB). */
export const BACKUP_PART_BYTES = 16 * 2 ** 20;
/** How long a node keeps a backup for the calls fetching its parts, and how many it keeps. */
const BACKUP_KEEP_MS = 5 * 60_000;
const MAX_KEPT_BACKUPS = 2;

export interface KeptBackup {
  readonly data: Uint8Array;
  readonly appliedIndex: bigint;
  readonly identity: string;
  readonly sha256: Uint8Array;
  readonly expiresAt: number;
}

export function backupHandlers(s: LedgerService, unary: Unary): Pick<LedgerServer, "backup"> {
  return {
    backup: unary(async (req) => {
      const now = s.now();
      for (const [id, b] of s.backups) if (b.expiresAt <= now) s.backups.delete(id);
      let id = req.backupId;
      let b = s.backups.get(id);
      if (id === "") {
        b = await takeBackup(s);
        id = randomBytes(16).toString("hex");
        while (s.backups.size >= MAX_KEPT_BACKUPS) s.backups.delete(s.backups.keys().next().value!);
        s.backups.set(id, b);
      } else if (!b) {
        throw new CallError(
          status.NOT_FOUND,
          `backup ${id} is not kept on this node (it expired, or another node answered): start again`,
          ErrorReason.ERROR_REASON_NOT_FOUND,
          "backup_id",
        );
      }
      if (req.offset > BigInt(b.data.byteLength)) {
        throw new CallError(
          status.OUT_OF_RANGE,
          `offset ${req.offset} is past the backup's ${b.data.byteLength} bytes`,
          ErrorReason.ERROR_REASON_INVALID_ARGUMENT,
          "offset",
        );
      }
      const from = Number(req.offset);
      return {
        state: b.data.subarray(from, from + (s.d.backupPartBytes ?? BACKUP_PART_BYTES)),
        appliedIndex: b.appliedIndex,
        clusterIdentity: b.identity,
        backupId: id,
        totalBytes: BigInt(b.data.byteLength),
        sha256: b.sha256,
      };
    }),
  };
}

/** The state at a linearizable read, without grants, memo or tokens (see LedgerState.snapshot). */
export async function takeBackup(s: LedgerService): Promise<KeptBackup> {
  await s.readBarrier();
  const st = s.d.raft.status();
  const state = s.d.app().state;
  const identity = state.identity;
  // Written a slice per turn of the event loop (copy on write keeps it at this point), so a
  // large state does not hold up the node's Raft loop.
  const job = state.beginSnapshot({ backup: true });
  try {
    while (!job.step(BACKUP_SLICE_NAMES)) await new Promise((r) => setImmediate(r));
  } finally {
    // A job given up (an exception) must not go on copying names at every command.
    job.cancel();
  }
  const data = job.result();
  return {
    data,
    appliedIndex: BigInt(st.applied),
    identity,
    sha256: createHash("sha256").update(data).digest(),
    expiresAt: s.now() + BACKUP_KEEP_MS,
  };
}
