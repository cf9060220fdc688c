// `dispenser status`: the ledger's members as each node sees itself (term, commit, applied) and as
// the leader sees them (state, match, lag), then the edge and its runway per sequence (its own
// segments, and its DC's reserve pool in seconds), scraped from the edge's /metrics so that looking
// never loads a sequence or leases anything.
import type { ClusterStatusResponse, Member } from "@dispenser/proto";
import { MemberRole, MemberState } from "@dispenser/proto";
import { CliError, EXIT } from "../errors.js";
import type { CommandSpec } from "../flags.js";
import { parseFlags } from "../flags.js";
import { table, toJson } from "../format.js";
import { EdgeApi, ledgerStatus } from "../grpc.js";
import type { Io } from "../io.js";
import { EDGE_CREDENTIAL_FLAGS, edgeAccess, LEDGER_CREDENTIAL_FLAGS, ledgerTls } from "../credentials.js";
import { DEFAULT_EDGE } from "./admin.js";
import { DEV_DEFAULTS } from "../defaults.js";

export const STATUS: CommandSpec = {
  name: "status",
  summary: "Prints the ledger's members, leader, terms and lag, and the edge's runway per sequence.",
  flags: [
    {
      name: "ledger",
      value: "host:port,...",
      default: DEV_DEFAULTS.ledgerListen.join(","),
      env: "DISPENSER_LEDGER",
      help: "ledger node addresses (each one is asked)",
    },
    {
      name: "edge",
      value: "host:port",
      default: DEFAULT_EDGE,
      env: "DISPENSER_EDGE",
      help: "the edge's gRPC address, or 'off'",
    },
    {
      name: "edge-metrics",
      value: "host:port",
      default: DEV_DEFAULTS.metricsListen,
      env: "DISPENSER_EDGE_METRICS",
      help: "the edge's /metrics address for runway per sequence, or 'off'",
    },
    { name: "json", boolean: true, help: "print one JSON document instead of text" },
    {
      name: "timeout-ms",
      value: "ms",
      default: "2000",
      env: "DISPENSER_TIMEOUT_MS",
      help: "deadline of each call",
    },
    ...EDGE_CREDENTIAL_FLAGS,
    ...LEDGER_CREDENTIAL_FLAGS,
  ],
  notes: "Exit code 0 when a leader is known, 1 when the reachable nodes know none, 3 when no node answers.",
};

const STATE: ReadonlyMap<MemberState, string> = new Map([
  [MemberState.MEMBER_STATE_LEADER, "leader"],
  [MemberState.MEMBER_STATE_FOLLOWER, "follower"],
  [MemberState.MEMBER_STATE_CANDIDATE, "candidate"],
  [MemberState.MEMBER_STATE_PRE_CANDIDATE, "pre-candidate"],
  [MemberState.MEMBER_STATE_UNREACHABLE, "unreachable"],
]);

interface MemberRow {
  id: string;
  address: string;
  role: string;
  state: string;
  term: string;
  commit: string;
  applied: string;
  match: string;
  lag: string;
  error?: string;
}

interface RunwayRow {
  sequence: string;
  /** Ids the edge holds in its segments. */
  runway: string;
  segment_size: string;
  issued: string;
  /** Ids left in the DC's reserve pool, and seconds they last at the DC's rate ("" if unknown). */
  dc_reserve: string;
  dc_runway_seconds: string;
}

interface EdgeRunway {
  rows: RunwayRow[];
  /** The edge issues from its DC's reserve: the ledger does not answer it. */
  onReserve: boolean;
}

/** Samples of one metric family from Prometheus text: label `sequence` → value. */
export function scrapeBySequence(text: string, metric: string): Map<string, string> {
  const out = new Map<string, string>();
  const re = new RegExp(`^${metric}\\{[^}]*sequence="([^"]*)"[^}]*\\} (\\S+)$`, "gm");
  for (const m of text.matchAll(re)) out.set(m[1]!, m[2]!);
  return out;
}

async function runway(address: string, timeoutMs: number): Promise<EdgeRunway> {
  const r = await fetch(`http://${address}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
  if (!r.ok) throw new Error(`HTTP ${r.status}`);
  const text = await r.text();
  const left = scrapeBySequence(text, "dispenser_edge_segment_runway");
  const size = scrapeBySequence(text, "dispenser_edge_segment_size");
  const issued = scrapeBySequence(text, "dispenser_edge_ids_issued_total");
  const reserve = scrapeBySequence(text, "dispenser_edge_reserve_ids");
  const reserveSeconds = scrapeBySequence(text, "dispenser_edge_reserve_runway_seconds");
  const names = [...new Set([...left.keys(), ...reserve.keys()])].sort();
  const rows = names.map((s) => ({
    sequence: s,
    runway: left.get(s) ?? "0",
    segment_size: size.get(s) ?? "",
    issued: issued.get(s) ?? "0",
    dc_reserve: reserve.get(s) ?? "",
    dc_runway_seconds: seconds(reserveSeconds.get(s)),
  }));
  return { rows, onReserve: /^dispenser_edge_on_reserve 1$/m.test(text) };
}

/** Whole seconds of a gauge sample, "" when absent. */
function seconds(v: string | undefined): string {
  const n = v === undefined ? NaN : Number(v);
  return Number.isFinite(n) ? String(Math.floor(n)) : "";
}

export async function status(argv: string[], io: Io): Promise<number> {
  const f = parseFlags(STATUS, argv, io.env);
  f.noMoreThan(0);
  const timeoutMs = f.int("timeout-ms", 1, 600_000) ?? 2_000;
  const ledgers = f.list("ledger");
  if (ledgers.length === 0) throw new CliError("--ledger needs at least one host:port", EXIT.usage);
  const tls = ledgerTls(f);
  const answers = await Promise.allSettled(ledgers.map((a) => ledgerStatus(a, timeoutMs, tls)));
  const ok = answers
    .map((a, i) => ({ address: ledgers[i]!, a }))
    .filter(
      (x): x is { address: string; a: PromiseFulfilledResult<ClusterStatusResponse> } =>
        x.a.status === "fulfilled",
    )
    .map((x) => ({ address: x.address, s: x.a.value }));

  const leaderView = ok.find((x) => x.s.leaderId !== 0n && x.s.nodeId === x.s.leaderId)?.s;
  const anyView = leaderView ?? ok[0]?.s;
  const members: Member[] = anyView?.members ?? [];
  const selfOf = (id: bigint): ClusterStatusResponse | undefined => ok.find((x) => x.s.nodeId === id)?.s;
  const rows: MemberRow[] = members.map((m) => {
    const self = selfOf(m.id);
    const asked = ledgers.indexOf(m.address);
    const failed = asked >= 0 ? answers[asked] : undefined;
    const error = failed?.status === "rejected" ? (failed.reason as Error).message : undefined;
    const lead = leaderView ? leaderView.members.find((x) => x.id === m.id) : undefined;
    const role = m.role === MemberRole.MEMBER_ROLE_LEARNER ? "learner" : "voter";
    const state = self
      ? (STATE.get(self.members.find((x) => x.self)?.state ?? MemberState.MEMBER_STATE_UNSPECIFIED) ??
        (self.leaderId === m.id ? "leader" : "follower"))
      : error !== undefined
        ? "down"
        : (STATE.get(m.state) ?? "unknown");
    return {
      id: m.id.toString(),
      address: m.address,
      role,
      state,
      term: self ? self.term.toString() : "",
      commit: self ? self.commit.toString() : "",
      applied: self ? self.applied.toString() : "",
      match: lead && leaderView ? lead.match.toString() : "",
      lag: lead && leaderView ? lead.lag.toString() : "",
      ...(error !== undefined ? { error } : {}),
    };
  });
  const unreachable = ledgers
    .map((a, i) => ({ a, r: answers[i]! }))
    .filter((x) => x.r.status === "rejected" && !members.some((m) => m.address === x.a))
    .map((x) => ({ address: x.a, error: ((x.r as PromiseRejectedResult).reason as Error).message }));

  const edgeAddress = f.str("edge") ?? "off";
  const edge =
    edgeAddress === "off"
      ? undefined
      : await (async () => {
          const api = new EdgeApi(edgeAddress, timeoutMs, edgeAccess(f, io.env));
          try {
            return { address: edgeAddress, up: true, sequences: (await api.listAll()).length };
          } catch (e) {
            return { address: edgeAddress, up: false, error: (e as Error).message };
          } finally {
            api.close();
          }
        })();
  const metricsAddress = f.str("edge-metrics") ?? "off";
  let runwayRows: RunwayRow[] = [];
  let onReserve = false;
  let runwayError: string | undefined;
  if (metricsAddress !== "off") {
    try {
      ({ rows: runwayRows, onReserve } = await runway(metricsAddress, timeoutMs));
    } catch (e) {
      runwayError = `edge metrics at ${metricsAddress}: ${(e as Error).message}`;
    }
  }

  const leader =
    anyView && anyView.leaderId !== 0n ? { id: anyView.leaderId, address: anyView.leaderAddress } : undefined;
  if (f.bool("json")) {
    io.out(
      toJson({
        clusterId: anyView?.clusterId ?? null,
        leader: leader ?? null,
        members: rows,
        unreachable,
        edge: edge ?? null,
        runway: runwayRows,
        onReserve,
        ...(runwayError !== undefined ? { runwayError } : {}),
      }) + "\n",
    );
  } else {
    if (anyView) {
      io.out(
        `ledger cluster ${anyView.clusterId}: ` +
          (leader ? `leader ${leader.id} at ${leader.address}, term ${anyView.term}\n` : "no leader known\n"),
      );
      io.out(
        table(
          ["ID", "ADDRESS", "ROLE", "STATE", "TERM", "COMMIT", "APPLIED", "MATCH", "LAG"],
          rows.map((r) => [r.id, r.address, r.role, r.state, r.term, r.commit, r.applied, r.match, r.lag]),
        ),
      );
    }
    for (const u of unreachable) io.out(`ledger ${u.address}: ${u.error}\n`);
    if (edge) {
      io.out(
        edge.up
          ? `\nedge ${edge.address}: up, ${edge.sequences} sequences in the catalog\n`
          : `\nedge ${edge.address}: ${edge.error}\n`,
      );
    }
    if (onReserve)
      io.out(
        "the edge cannot reach the ledger: it issues from its DC's reserve (DC_RUNWAY_S is what is left)\n",
      );
    if (runwayRows.length > 0)
      io.out(
        table(
          ["SEQUENCE", "RUNWAY", "SEGMENT_SIZE", "ISSUED", "DC_RESERVE", "DC_RUNWAY_S"],
          runwayRows.map((r) => [
            r.sequence,
            r.runway,
            r.segment_size,
            r.issued,
            r.dc_reserve,
            r.dc_runway_seconds,
          ]),
        ),
      );
    else if (runwayError !== undefined) io.out(`${runwayError}\n`);
    else if (metricsAddress !== "off") io.out("no sequence loaded on the edge yet\n");
  }
  if (ok.length === 0) {
    io.err(
      `dispenser: no ledger node answered at ${ledgers.join(", ")} (set --ledger or DISPENSER_LEDGER)\n`,
    );
    return EXIT.unavailable;
  }
  if (!leader) io.err("dispenser: the ledger has no leader (no quorum, or an election is in progress)\n");
  return leader ? 0 : EXIT.server;
}
