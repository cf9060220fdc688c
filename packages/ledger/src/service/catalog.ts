// The catalog calls: create, update, delete, get and list sequences. Every write is one command
// through Raft; reads are linearizable on any node.
import { DEFAULT_PAGE_SIZE, ErrorReason, MAX_PAGE_SIZE } from "@dispenser/proto";
import type { LedgerServer } from "@dispenser/proto";
import { status } from "@grpc/grpc-js";
import {
  AUTO_DISK_FROM_PB,
  LAYOUT_FROM_PB,
  ORDERING_FROM_PB,
  describeErrors,
  normalizeSequenceDef,
} from "@dispenser/domain";
import { CallError, enumIn, expected, pbOf } from "./common.js";
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
      const layout = enumIn(LAYOUT_FROM_PB, seq.layout, "layout");
      const ordering = enumIn(ORDERING_FROM_PB, seq.ordering, "ordering");
      const autoDisk = enumIn(AUTO_DISK_FROM_PB, seq.autoDisk, "auto_disk");
      // A field given is used as given (0 included: validation says what is wrong with it);
      // only a field left unset takes its default.
      const spec = normalizeSequenceDef({
        name: seq.name,
        type: seq.type,
        ...(seq.length !== undefined ? { length: seq.length } : {}),
        ...(seq.starting !== undefined ? { starting: seq.starting } : {}),
        ...(seq.step !== undefined ? { step: seq.step } : {}),
        ...(seq.datacenters !== undefined ? { datacenters: seq.datacenters } : {}),
        ...(layout ? { layout } : {}),
        ...(ordering ? { ordering } : {}),
        ...(autoDisk ? { autoDisk } : {}),
        ...(seq.limits ? { limits: { maxSegmentSize: seq.limits.maxSegmentSize } } : {}),
        ...(seq.keyFingerprint ? { keyFingerprint: seq.keyFingerprint } : {}),
        ...(seq.reserveSeconds !== undefined ? { reserveSeconds: seq.reserveSeconds } : {}),
      });
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
      const autoDisk =
        req.autoDisk === undefined ? undefined : enumIn(AUTO_DISK_FROM_PB, req.autoDisk, "auto_disk");
      const ordering =
        req.ordering === undefined ? undefined : enumIn(ORDERING_FROM_PB, req.ordering, "ordering");
      // The expected revision is checked by the state machine as it applies the entry, so two
      // racing updates cannot both pass it.
      const rec = await s.command(
        {
          type: "UpdateSequence",
          name: req.name,
          changes: {
            ...(autoDisk ? { autoDisk } : {}),
            ...(ordering ? { ordering } : {}),
            ...(req.limits ? { limits: { maxSegmentSize: req.limits.maxSegmentSize } } : {}),
            ...(req.reserveSeconds !== undefined ? { reserveSeconds: req.reserveSeconds } : {}),
          },
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
