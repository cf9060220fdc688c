// What the edge needs from the segment ledger, as an interface: the gRPC implementation talks to a
// real ledger cluster; tests may drive the same issuing code against the ledger's own pure state
// machine. Every method throws EdgeError for the failures callers handle.
import type { SequenceChanges, SequenceDef, SequenceSpec } from "@dispenser/domain";

export interface SequenceInfo {
  readonly def: SequenceDef;
  /** The catalog revision of the definition's last change. */
  readonly revision: bigint;
  /** When the ledger created it, in ms since the epoch (0 when read from the DC's mirror). */
  readonly createdAtMs: number;
}

/** One page of the catalog, in name order. */
export interface SequencePage {
  readonly sequences: readonly SequenceInfo[];
  /** Where the next page starts; "" after the last. */
  readonly nextPageToken: string;
  /** The catalog revision the page was read at. */
  readonly revision: bigint;
}

export interface PageRequest {
  /** 0 or unset: the ledger's default page size. */
  readonly pageSize?: number;
  readonly pageToken?: string;
}

/** Counter values [start, end) of one (sequence, dc) counter space, committed by the ledger. */
export interface SegmentGrant {
  readonly start: bigint;
  readonly end: bigint;
  readonly fence: { readonly term: bigint; readonly index: bigint };
  /** The sequence's revision when granted. */
  readonly revision: bigint;
  /** The secret a return of this grant must present; never shown to anyone else. */
  readonly returnToken: string;
  /** The identity of the ledger cluster that granted it ("" from a ledger that sends none). */
  readonly clusterIdentity: string;
}

export interface ReturnOutcome {
  readonly accepted: boolean;
  readonly wasted: bigint;
}

export interface LedgerPort {
  getSequence(name: string): Promise<SequenceInfo>;
  /** `keyFingerprint`: type 1 only, the fingerprint of the secret this edge permutes with. */
  lease(
    name: string,
    dc: number,
    size: bigint,
    requestId: string,
    keyFingerprint?: string,
  ): Promise<SegmentGrant>;
  /** Gives `tail` of `grant` back; the grant's return token proves this edge holds it. */
  returnTail(
    name: string,
    dc: number,
    tail: { readonly start: bigint; readonly end: bigint },
    grant: Pick<SegmentGrant, "fence" | "returnToken">,
    requestId: string,
  ): Promise<ReturnOutcome>;
  /** Fields the spec leaves unset take the ledger's defaults. */
  createSequence(spec: SequenceSpec): Promise<SequenceInfo>;
  /** `expectedRevision` 0: whatever the current one is. Resolves with the catalog's new revision. */
  deleteSequence(name: string, expectedRevision: bigint): Promise<bigint>;
  updateSequence(name: string, changes: SequenceChanges, expectedRevision: bigint): Promise<SequenceInfo>;
  listSequences(page: PageRequest): Promise<SequencePage>;
  close(): void;
}
