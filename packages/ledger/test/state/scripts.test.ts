// The ledger state machine's scenarios kept as text: testdata/*.txt, run by the Raft package's
// script driver on a LedgerState that each command reaches as the next committed entry. Commands:
//
//   term T                                   later entries are committed in term T
//   create NAME type=N [length= datacenters= starting= step= ordering= layout= auto-disk=
//          max-segment-size= reserve-seconds=]
//   update NAME [ordering= auto-disk= max-segment-size= reserve-seconds=] | delete NAME
//   lease NAME dc=D size=N request=R [kind=window]
//   give-back NAME dc=D start=S end=E request=R fence=T/I [token=stranger]
//   raise-mark NAME dc=D to=N | marks NAME | restore (a snapshot and back)
import { join } from "node:path";
import type { SequenceSpec } from "@dispenser/domain";
import { describe } from "vitest";
import type { Directive } from "../../../raft/test/datadriven.js";
import { intArg, scripts } from "../../../raft/test/datadriven.js";
import type { Fence } from "../../src/state/commands.js";
import { LedgerState } from "../../src/state/ledger-state.js";
import type { Result } from "../../src/state/result.js";
import { Driver, seqDef } from "./harness.js";

function text(d: Directive, key: string): string | undefined {
  return d.args.get(key)?.[0];
}

function big(d: Directive, key: string): bigint | undefined {
  const v = text(d, key);
  return v === undefined ? undefined : BigInt(v);
}

function failed<T>(r: Result<T>, ok: (data: T) => string): string {
  return r.ok ? ok(r.data) : `${r.code}: ${r.message}`;
}

function spec(d: Directive): SequenceSpec {
  const n = (key: string): number | undefined => (d.args.has(key) ? intArg(d, key) : undefined);
  const maxSegment = big(d, "max-segment-size");
  return {
    name: d.positionals[0]!,
    type: n("type") as 1 | 2 | 3,
    ...(n("length") !== undefined ? { length: n("length")! } : {}),
    ...(n("datacenters") !== undefined ? { datacenters: n("datacenters")! } : {}),
    ...(big(d, "starting") !== undefined ? { starting: big(d, "starting")! } : {}),
    ...(big(d, "step") !== undefined ? { step: big(d, "step")! } : {}),
    ...(text(d, "ordering") ? { ordering: text(d, "ordering") } : {}),
    ...(text(d, "layout") ? { layout: text(d, "layout") } : {}),
    ...(text(d, "auto-disk") ? { autoDisk: text(d, "auto-disk") } : {}),
    ...(maxSegment !== undefined ? { limits: { maxSegmentSize: maxSegment } } : {}),
    ...(n("reserve-seconds") !== undefined ? { reserveSeconds: n("reserve-seconds")! } : {}),
  };
}

function fenceOf(d: Directive): Fence {
  const [term, index] = (text(d, "fence") ?? "").split("/").map(Number);
  if (!Number.isInteger(term) || !Number.isInteger(index)) throw new Error("fence must be TERM/INDEX");
  return { term: term!, index: index! };
}

function run(w: { d: Driver }, d: Directive): string {
  const name = d.positionals[0] ?? "";
  switch (d.cmd) {
    case "term":
      w.d.term = intArg(d, 0);
      return "";
    case "create": {
      const s = spec(d);
      return failed(w.d.run({ type: "CreateSequence", def: seqDef(s), createdAtMs: 1_000 }), (o) =>
        [`revision ${o.revision}${o.resumed ? " (resumed)" : ""}`, o.message].filter(Boolean).join("\n"),
      );
    }
    case "update":
      return failed(
        w.d.run({
          type: "UpdateSequence",
          name,
          changes: {
            ...(text(d, "ordering") ? { ordering: text(d, "ordering") as "edge" } : {}),
            ...(text(d, "auto-disk") ? { autoDisk: text(d, "auto-disk") as "memory" } : {}),
            ...(big(d, "max-segment-size") !== undefined
              ? { limits: { maxSegmentSize: big(d, "max-segment-size")! } }
              : {}),
            ...(d.args.has("reserve-seconds") ? { reserveSeconds: intArg(d, "reserve-seconds") } : {}),
          },
        }),
        (o) => `revision ${o.revision}${o.changed ? "" : " (unchanged)"}`,
      );
    case "delete":
      return failed(w.d.run({ type: "DeleteSequence", name }), (o) => `revision ${o.revision}`);
    case "lease":
      return failed(
        w.d.lease(
          name,
          intArg(d, "dc"),
          big(d, "size")!,
          text(d, "request") ?? "r",
          text(d, "kind") === "window" ? "window" : "segment",
        ),
        (o) =>
          `grant [${o.grant.start}, ${o.grant.end}) fence ${o.grant.fence.term}/${o.grant.fence.index}` +
          (o.replayed ? " (replayed)" : "") +
          (o.capped ? " (capped)" : ""),
      );
    case "give-back":
      return failed(
        w.d.giveBack(
          name,
          intArg(d, "dc"),
          big(d, "start")!,
          big(d, "end")!,
          fenceOf(d),
          text(d, "request") ?? "ret",
          text(d, "token") === "stranger" ? "0".repeat(32) : undefined,
        ),
        (o) => (o.accepted ? `taken back: mark ${o.hwm}` : `refused: ${o.message}`),
      );
    case "raise-mark":
      return failed(
        w.d.run({ type: "RaiseMark", name, dc: intArg(d, "dc"), to: big(d, "to")! }),
        (o) => `mark ${o.hwm}${o.raised ? "" : " (unchanged)"}`,
      );
    case "marks": {
      const out: string[] = [];
      for (let dc = 0; ; dc++) {
        const info = w.d.state.dcInfo(name, dc);
        if (!info) break;
        out.push(`dc ${dc}: mark ${info.hwm} of ${info.capacity}, ${info.stats.grants} grants`);
      }
      return out.length === 0 ? "none" : out.join("\n");
    }
    case "restore": {
      const next = new Driver(LedgerState.restore(w.d.state.snapshot()));
      next.term = w.d.term;
      next.index = w.d.index;
      for (const [k, v] of w.d.tokens) next.tokens.set(k, v);
      w.d = next;
      return "";
    }
    default:
      throw new Error(`unknown command ${d.cmd}`);
  }
}

describe("ledger state scenarios (testdata/*.txt)", () => {
  scripts(join(import.meta.dirname, "testdata"), () => ({ d: new Driver() }), run);
});
