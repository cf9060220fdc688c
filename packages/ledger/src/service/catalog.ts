// The catalog calls: create, update, delete, get and list sequences. Every write is one command
// through Raft; reads are linearizable on any node.
import { DEFAULT_PAGE_SIZE, ErrorReason, MAX_PAGE_SIZE } from "@dispenser/proto";
import type { LedgerServer } from "@dispenser/proto";
import { status } from "@grpc/grpc-js";
import {
  changesFromPb,
  describeErrors,
  normalizeSequenceDef,
  onUnknownValue,
  specFromPb,
} from "@dispenser/domain";
import { CallError, expected, pbOf } from "./common.js";
import type { LedgerService, Unary } from "./ledger-service.js";

export function catalogHandlers(
  s: LedgerService,
  unary: Unary,
): Pick<
  LedgerServer,
  "createSequence" | "updateSequence" | "deleteSequence" | "getSequence" | "listSequences"
> {
  return {
    createSequence: unary(async (req) => {
      const seq = req.sequence;
      if (!seq)
        throw new CallError(
          status.INVALID_ARGUMENT,
          "sequence is required",
          ErrorReason.ERROR_REASON_INVALID_ARGUMENT,
          "sequence",
        );
      const spec = normalizeSequenceDef(fromWire(() => specFromPb(seq)));
      if (!spec.ok) {
        throw new CallError(
          status.INVALID_ARGUMENT,
          describeErrors(spec.errors),
          ErrorReason.ERROR_REASON_INVALID_ARGUMENT,
          spec.errors[0]?.field ?? "",
        );
      }
      const rec = await s.command({ type: "CreateSequence", def: spec.def, createdAtMs: s.now() }, (d) =>
        d.type === "CreateSequence" ? d.sequence : undefined,
      );
      return { sequence: pbOf(rec) };
    }),

    updateSequence: unary(async (req) => {
      const changes = fromWire(() => changesFromPb(req));
      // The expected revision is checked by the state machine as it applies the entry, so two
      // racing updates cannot both pass it.
      const rec = await s.command(
        {
          type: "UpdateSequence",
          name: req.name,
          changes,
          ...expected(req.expectedRevision),
        },
        (d) => (d.type === "UpdateSequence" ? d.sequence : undefined),
      );
      return { sequence: pbOf(rec) };
    }),

    deleteSequence: unary(async (req) => {
      const revision = await s.command(
        { type: "DeleteSequence", name: req.name, ...expected(req.expectedRevision) },
        (d) => (d.type === "DeleteSequence" ? d.revision : undefined),
      );
      return { revision };
    }),

    getSequence: unary(async (req) => {
      const rec = await s.current(req.name);
      if (!rec)
        throw new CallError(
          status.NOT_FOUND,
          `sequence "${req.name}" does not exist`,
          ErrorReason.ERROR_REASON_NOT_FOUND,
          "name",
        );
      return { sequence: pbOf(rec) };
    }),

    listSequences: unary(async (req) => {
      await s.readBarrier();
      const limit = req.pageSize === 0 ? DEFAULT_PAGE_SIZE : Math.min(req.pageSize, MAX_PAGE_SIZE);
      const page = s.d.app().state.list({ ...(req.pageToken ? { after: req.pageToken } : {}), limit });
      if (!page.ok)
        throw new CallError(status.INVALID_ARGUMENT, page.message, ErrorReason.ERROR_REASON_INVALID_ARGUMENT);
      return {
        sequences: page.data.sequences.map(pbOf),
        nextPageToken: page.data.next ?? "",
        revision: page.data.revision,
      };
    }),
  };
}

/** A conversion off the wire whose unknown enum values are the caller's error. */
function fromWire<T>(f: () => T): T {
  return onUnknownValue(
    f,
    (e) =>
      new CallError(status.INVALID_ARGUMENT, e.message, ErrorReason.ERROR_REASON_INVALID_ARGUMENT, e.field),
  );
}
