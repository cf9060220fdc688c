// Protocol constants and the error-trailer convention the protos document, in one place so the
// ledger, the edge and their clients agree on them.
import type { StatusObject } from "@grpc/grpc-js";
import { Metadata, status } from "@grpc/grpc-js";
import type { MessageFns } from "./gen/dispenser/ledger/v1/ledger.js";
import { ErrorDetail, ErrorReason } from "./gen/dispenser/ledger/v1/ledger.js";

/** Trailer on FAILED_PRECONDITION "not leader": the leader's address, host:port. */
export const LEADER_METADATA_KEY = "dispenser-leader";
/** Trailer on FAILED_PRECONDITION "not leader": the leader's node id, decimal. */
export const LEADER_ID_METADATA_KEY = "dispenser-leader-id";
/** Trailer on every error: an encoded ErrorDetail (binary keys end in -bin). */
export const ERROR_DETAIL_METADATA_KEY = "dispenser-error-bin";

/** Largest data chunk of a Peer.InstallSnapshot stream. */
export const MAX_SNAPSHOT_CHUNK_BYTES = 1024 * 1024;
/** Largest Dispenser.IssueBatch count. */
export const MAX_ISSUE_BATCH = 10_000;
/** Ledger.ListSequences page size when the request says 0, and the cap above which it is clamped. */
export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;
/** Longest request_id of LeaseSegment/ReturnSegment, in UTF-8 bytes. */
export const MAX_REQUEST_ID_BYTES = 128;

/** What an error trailer may say; reason is required. */
export type ErrorDetailInit = Parameters<MessageFns<ErrorDetail>["fromPartial"]>[0] & {
  reason: ErrorReason;
};

/**
 * A status for a grpc-js server callback, carrying the ErrorDetail trailer (and, for NOT_LEADER,
 * the `dispenser-leader` and `dispenser-leader-id` trailers). Pass it as the callback's error.
 */
export function statusError(code: status, details: string, init: ErrorDetailInit): Partial<StatusObject> {
  const detail = ErrorDetail.fromPartial(init);
  const metadata = new Metadata();
  metadata.set(ERROR_DETAIL_METADATA_KEY, Buffer.from(ErrorDetail.encode(detail).finish()));
  if (detail.reason === ErrorReason.ERROR_REASON_NOT_LEADER) {
    if (detail.leaderAddress !== "") metadata.set(LEADER_METADATA_KEY, detail.leaderAddress);
    if (detail.leaderId !== 0n) metadata.set(LEADER_ID_METADATA_KEY, detail.leaderId.toString());
  }
  return { code, details, metadata };
}

/** The ErrorDetail trailer of a failed call, or undefined when it has none (or it is garbled). */
export function errorDetailOf(err: { readonly metadata?: Metadata | undefined }): ErrorDetail | undefined {
  const raw = err.metadata?.get(ERROR_DETAIL_METADATA_KEY)[0];
  if (raw === undefined || typeof raw === "string") return undefined;
  try {
    return ErrorDetail.decode(raw);
  } catch {
    return undefined;
  }
}

/** Where the leader is, from a "not leader" error's trailers; undefined when it says nothing. */
export function leaderOf(err: {
  readonly code?: number | undefined;
  readonly metadata?: Metadata | undefined;
}): { readonly address: string; readonly id: bigint } | undefined {
  if (err.code !== status.FAILED_PRECONDITION) return undefined;
  const address = err.metadata?.get(LEADER_METADATA_KEY)[0];
  if (typeof address !== "string" || address === "") return undefined;
  const idText = err.metadata?.get(LEADER_ID_METADATA_KEY)[0];
  const id = typeof idText === "string" && /^[0-9]{1,20}$/.test(idText) ? BigInt(idText) : 0n;
  return { address, id };
}
