// The Grafana dashboards of a region, as code: the ledger (Raft health, latency, grants) and the
// edge (issuing, runway, leases, waste, rejections). `node --import tsx deploy/grafana/build.ts`
// writes them to deploy/grafana/dashboards/*.json; test/deploy.test.ts fails when those are stale
// and when a query names a metric the processes do not export.
import { format, resolveConfig } from "prettier";

export interface DataSourceRef {
  readonly type: "prometheus";
  readonly uid: string;
}

export interface Target {
  readonly refId: string;
  readonly datasource: DataSourceRef;
  readonly expr: string;
  readonly legendFormat: string;
  readonly range: boolean;
  readonly instant: boolean;
}

interface GridPos {
  readonly h: number;
  readonly w: number;
  readonly x: number;
  readonly y: number;
}

interface Threshold {
  readonly color: string;
  readonly value: number | null;
}

interface ValueMapping {
  readonly type: "value";
  readonly options: Readonly<Record<string, { text: string; color: string; index: number }>>;
}

export interface Panel {
  readonly id: number;
  readonly type: "timeseries" | "stat" | "state-timeline";
  readonly title: string;
  readonly description: string;
  readonly datasource: DataSourceRef;
  readonly gridPos: GridPos;
  readonly targets: readonly Target[];
  readonly fieldConfig: {
    readonly defaults: {
      readonly unit: string;
      readonly min?: number;
      readonly decimals?: number;
      readonly color: { readonly mode: string };
      readonly thresholds: { readonly mode: "absolute"; readonly steps: readonly Threshold[] };
      readonly mappings: readonly ValueMapping[];
      readonly custom?: Readonly<Record<string, unknown>>;
    };
    readonly overrides: readonly never[];
  };
  readonly options: Readonly<Record<string, unknown>>;
}

export interface RowPanel {
  readonly id: number;
  readonly type: "row";
  readonly title: string;
  readonly collapsed: false;
  readonly gridPos: GridPos;
  readonly panels: readonly never[];
}

export interface TemplateVariable {
  readonly name: string;
  readonly label: string;
  readonly type: "datasource" | "query";
  readonly query: string | { readonly query: string; readonly refId: string };
  readonly definition?: string;
  readonly datasource?: DataSourceRef;
  readonly current: Readonly<Record<string, unknown>>;
  readonly includeAll: boolean;
  readonly allValue?: string;
  readonly multi: boolean;
  readonly refresh: 1 | 2;
  readonly sort?: number;
  readonly regex: string;
  readonly hide: 0;
  readonly options: readonly never[];
}

export interface Dashboard {
  readonly uid: string;
  readonly title: string;
  readonly description: string;
  readonly tags: readonly string[];
  readonly editable: false;
  readonly graphTooltip: 1;
  readonly schemaVersion: 39;
  readonly version: 1;
  readonly refresh: string;
  readonly time: { readonly from: string; readonly to: string };
  readonly timepicker: Readonly<Record<string, never>>;
  readonly timezone: "browser";
  readonly fiscalYearStartMonth: 0;
  readonly weekStart: "";
  readonly id: null;
  readonly annotations: { readonly list: readonly Readonly<Record<string, unknown>>[] };
  readonly links: readonly Readonly<Record<string, unknown>>[];
  readonly templating: { readonly list: readonly TemplateVariable[] };
  readonly panels: readonly (Panel | RowPanel)[];
}

/** Every query goes to the data source chosen in the dashboard's `datasource` variable. */
const DS: DataSourceRef = { type: "prometheus", uid: "${datasource}" };

interface Query {
  readonly expr: string;
  readonly legend: string;
}

interface PanelSpec {
  readonly type: Panel["type"];
  readonly title: string;
  readonly description: string;
  readonly unit: string;
  readonly queries: readonly Query[];
  /** Grid columns out of 24. */
  readonly w: number;
  /** Grid rows (30 px each). */
  readonly h: number;
  readonly min?: number;
  readonly decimals?: number;
  readonly thresholds?: readonly Threshold[];
  readonly mappings?: readonly ValueMapping[];
  /** Stat panels: show the series name (e.g. which node leads) instead of its value. */
  readonly showName?: boolean;
}

interface RowSpec {
  readonly title: string;
  readonly panels: readonly PanelSpec[];
}

const q = (expr: string, legend: string): Query => ({ expr, legend });

const ts = (
  title: string,
  description: string,
  unit: string,
  queries: readonly Query[],
  w = 8,
  extra: Partial<PanelSpec> = {},
): PanelSpec => ({ type: "timeseries", title, description, unit, queries, w, h: 8, ...extra });

const stat = (
  title: string,
  description: string,
  unit: string,
  query: Query,
  extra: Partial<PanelSpec> = {},
): PanelSpec => ({ type: "stat", title, description, unit, queries: [query], w: 4, h: 4, ...extra });

const GREEN_ONLY: readonly Threshold[] = [{ color: "green", value: null }];

function panelOf(spec: PanelSpec, id: number, gridPos: GridPos): Panel {
  const targets = spec.queries.map((query, i): Target => ({
    refId: String.fromCharCode(65 + i),
    datasource: DS,
    expr: query.expr,
    legendFormat: query.legend,
    range: spec.type !== "stat" || spec.showName !== true,
    instant: spec.type === "stat" && spec.showName === true,
  }));
  const options: Record<string, unknown> =
    spec.type === "stat"
      ? {
          reduceOptions: { calcs: ["lastNotNull"], fields: "", values: false },
          colorMode: "value",
          graphMode: spec.showName === true ? "none" : "area",
          justifyMode: "auto",
          orientation: "auto",
          textMode: spec.showName === true ? "name" : "auto",
        }
      : spec.type === "state-timeline"
        ? {
            showValue: "auto",
            mergeValues: true,
            alignValue: "left",
            rowHeight: 0.9,
            legend: { displayMode: "list", placement: "bottom", showLegend: true },
            tooltip: { mode: "single", sort: "none" },
          }
        : {
            legend: { displayMode: "list", placement: "bottom", showLegend: true },
            tooltip: { mode: "multi", sort: "desc" },
          };
  const custom: Record<string, unknown> | undefined =
    spec.type === "timeseries"
      ? { drawStyle: "line", lineWidth: 1, fillOpacity: 10, showPoints: "never", spanNulls: false }
      : spec.type === "state-timeline"
        ? { fillOpacity: 80, lineWidth: 0 }
        : undefined;
  return {
    id,
    type: spec.type,
    title: spec.title,
    description: spec.description,
    datasource: DS,
    gridPos,
    targets,
    fieldConfig: {
      defaults: {
        unit: spec.unit,
        ...(spec.min !== undefined ? { min: spec.min } : {}),
        ...(spec.decimals !== undefined ? { decimals: spec.decimals } : {}),
        color: { mode: spec.type === "timeseries" ? "palette-classic" : "thresholds" },
        thresholds: { mode: "absolute", steps: spec.thresholds ?? GREEN_ONLY },
        mappings: spec.mappings ?? [],
        ...(custom !== undefined ? { custom } : {}),
      },
      overrides: [],
    },
    options,
  };
}

/** Rows of panels, left to right and wrapping at 24 columns; ids in reading order. */
function layout(rows: readonly RowSpec[]): (Panel | RowPanel)[] {
  const out: (Panel | RowPanel)[] = [];
  let y = 0;
  let id = 1;
  for (const row of rows) {
    out.push({
      id: id++,
      type: "row",
      title: row.title,
      collapsed: false,
      gridPos: { h: 1, w: 24, x: 0, y },
      panels: [],
    });
    y += 1;
    let x = 0;
    let lineHeight = 0;
    for (const spec of row.panels) {
      if (spec.w > 24) throw new Error(`panel "${spec.title}" is wider than the grid`);
      if (x + spec.w > 24) {
        y += lineHeight;
        x = 0;
        lineHeight = 0;
      }
      out.push(panelOf(spec, id++, { h: spec.h, w: spec.w, x, y }));
      x += spec.w;
      lineHeight = Math.max(lineHeight, spec.h);
    }
    y += lineHeight;
  }
  return out;
}

const datasourceVariable: TemplateVariable = {
  name: "datasource",
  label: "Data source",
  type: "datasource",
  query: "prometheus",
  current: {},
  includeAll: false,
  multi: false,
  refresh: 1,
  regex: "",
  hide: 0,
  options: [],
};

function queryVariable(name: string, label: string, query: string): TemplateVariable {
  return {
    name,
    label,
    type: "query",
    datasource: DS,
    query: { query, refId: name },
    definition: query,
    current: { selected: true, text: ["All"], value: ["$__all"] },
    includeAll: true,
    allValue: ".+",
    multi: true,
    refresh: 2,
    sort: 1,
    regex: "",
    hide: 0,
    options: [],
  };
}

function dashboard(
  uid: string,
  title: string,
  description: string,
  variables: readonly TemplateVariable[],
  rows: readonly RowSpec[],
): Dashboard {
  return {
    uid,
    title,
    description,
    tags: ["dispenser"],
    editable: false,
    graphTooltip: 1,
    schemaVersion: 39,
    version: 1,
    refresh: "30s",
    time: { from: "now-1h", to: "now" },
    timepicker: {},
    timezone: "browser",
    fiscalYearStartMonth: 0,
    weekStart: "",
    id: null,
    annotations: {
      list: [
        {
          builtIn: 1,
          datasource: { type: "grafana", uid: "-- Grafana --" },
          enable: true,
          hide: true,
          iconColor: "rgba(0, 211, 255, 1)",
          name: "Annotations & Alerts",
          type: "dashboard",
        },
      ],
    },
    links: [
      {
        title: "dispenser",
        type: "dashboards",
        tags: ["dispenser"],
        asDropdown: false,
        includeVars: false,
        keepTime: true,
      },
    ],
    templating: { list: [datasourceVariable, ...variables] },
    panels: layout(rows),
  };
}

const ROLE_MAPPINGS: readonly ValueMapping[] = [
  {
    type: "value",
    options: {
      "0": { text: "follower", color: "blue", index: 0 },
      "1": { text: "pre-candidate", color: "yellow", index: 1 },
      "2": { text: "candidate", color: "orange", index: 2 },
      "3": { text: "leader", color: "green", index: 3 },
    },
  },
];

const quantiles = (metric: string, by: string, sel: string, legend: string): Query[] =>
  (["0.5", "0.99"] as const).map((p) =>
    q(
      `histogram_quantile(${p}, sum by (${by}, le) (rate(${metric}_bucket{${sel}}[$__rate_interval])))`,
      `p${p.slice(2).padEnd(2, "0")} ${legend}`,
    ),
  );

export function ledgerDashboard(): Dashboard {
  const L = 'job=~"$job"';
  const role = (r: string): string => `sum by (node) (dispenser_ledger_raft_role{${L}, role="${r}"})`;
  return dashboard(
    "dispenser-ledger",
    "dispenser / ledger",
    "The segment ledger: Raft roles and progress per node, proposal and fsync latency, grants and high-water marks.",
    [queryVariable("job", "Job", "label_values(dispenser_ledger_raft_term, job)")],
    [
      {
        title: "Cluster",
        panels: [
          stat(
            "Leader",
            "The node that reports the leader role. None for 30 s fires DispenserLedgerNoLeader.",
            "none",
            q(`max by (node) (dispenser_ledger_raft_role{${L}, role="leader"}) == 1`, "node {{node}}"),
            { showName: true },
          ),
          stat(
            "Term",
            "Highest Raft term of any node.",
            "none",
            q(`max(dispenser_ledger_raft_term{${L}})`, ""),
          ),
          stat(
            "Commit index",
            "Highest index known committed.",
            "none",
            q(`max(dispenser_ledger_raft_commit_index{${L}})`, ""),
          ),
          stat(
            "Nodes up",
            "Ledger nodes answering scrapes. Two of three keep the quorum.",
            "none",
            q(`sum(up{${L}})`, ""),
            {
              thresholds: [
                { color: "red", value: null },
                { color: "orange", value: 2 },
                { color: "green", value: 3 },
              ],
            },
          ),
          stat(
            "Corrupt logs",
            "Nodes that refused their on-disk log at start (DispenserLedgerStorageCorrupt).",
            "none",
            q(`sum(dispenser_ledger_storage_corrupt{${L}})`, ""),
            {
              thresholds: [
                { color: "green", value: null },
                { color: "red", value: 1 },
              ],
            },
          ),
          stat(
            "Grants/s",
            "Segments granted per second (each grant is applied on every node: the busiest node's count).",
            "short",
            q(
              `sum(max by (sequence, kind) (rate(dispenser_ledger_grants_total{${L}}[$__rate_interval])))`,
              "",
            ),
          ),
          {
            type: "state-timeline",
            title: "Raft role per node",
            description:
              "Each node's role over time. More than one leader at once is a stale leader cut off by a partition.",
            unit: "none",
            queries: [
              q(
                `${role("leader")} * 3 + ${role("candidate")} * 2 + ${role("pre-candidate")}`,
                "node {{node}}",
              ),
            ],
            w: 24,
            h: 5,
            mappings: ROLE_MAPPINGS,
          },
        ],
      },
      {
        title: "Raft progress",
        panels: [
          ts("Term", "Raft term per node.", "none", [
            q(`max by (node) (dispenser_ledger_raft_term{${L}})`, "node {{node}}"),
          ]),
          ts("Commit index", "Highest index each node knows committed.", "none", [
            q(`max by (node) (dispenser_ledger_raft_commit_index{${L}})`, "node {{node}}"),
          ]),
          ts("Applied index", "Highest index each node applied to its ledger state.", "none", [
            q(`max by (node) (dispenser_ledger_raft_applied_index{${L}})`, "node {{node}}"),
          ]),
          ts(
            "Apply lag",
            "Entries each node's applied index trails the highest commit index (DispenserLedgerFollowerLag). Nodes are scraped at different moments, so a busy cluster shows some lag on every node.",
            "none",
            [
              q(
                `scalar(max(dispenser_ledger_raft_commit_index{${L}})) - max by (node) (dispenser_ledger_raft_applied_index{${L}})`,
                "node {{node}}",
              ),
            ],
          ),
          ts(
            "Leader changes",
            "Leader changes each node saw (DispenserLedgerLeaderChangesFrequent: more than 3 in 15 min).",
            "short",
            [
              q(
                `sum by (node) (increase(dispenser_ledger_raft_leader_changes_total{${L}}[$__rate_interval]))`,
                "node {{node}}",
              ),
            ],
            8,
            { min: 0 },
          ),
          ts(
            "Snapshots",
            "Snapshots taken or installed per node.",
            "short",
            [
              q(
                `sum by (node, kind) (increase(dispenser_ledger_snapshots_total{${L}}[$__rate_interval]))`,
                "node {{node}} {{kind}}",
              ),
            ],
            8,
            { min: 0 },
          ),
        ],
      },
      {
        title: "Latency",
        panels: [
          ts(
            "Proposal latency",
            "From proposal to applied result on the leader: what a lease costs inside the ledger.",
            "s",
            quantiles("dispenser_ledger_proposal_seconds", "node", L, "node {{node}}"),
          ),
          ts(
            "fsync latency",
            "One synced LevelDB batch per Ready (DispenserLedgerFsyncSlow: p99 over 100 ms for 10 min).",
            "s",
            quantiles("dispenser_ledger_fsync_seconds", "node", L, "node {{node}}"),
          ),
          ts(
            "Ready cycle",
            "Persist, send, apply and advance of one Ready.",
            "s",
            quantiles("dispenser_ledger_ready_seconds", "node", L, "node {{node}}"),
          ),
        ],
      },
      {
        title: "Grants",
        panels: [
          ts(
            "Grants/s by sequence",
            "Segments granted per second, by sequence and kind.",
            "short",
            [
              q(
                `max by (sequence, kind) (rate(dispenser_ledger_grants_total{${L}}[$__rate_interval]))`,
                "{{sequence}} {{kind}}",
              ),
            ],
            12,
            { min: 0 },
          ),
          ts(
            "Granted ids/s by sequence",
            "Ids granted per second in segments.",
            "short",
            [
              q(
                `max by (sequence) (rate(dispenser_ledger_granted_ids_total{${L}}[$__rate_interval]))`,
                "{{sequence}}",
              ),
            ],
            12,
            { min: 0 },
          ),
          ts(
            "High-water marks",
            "Per sequence and DC, the counter mark of everything ever granted. It never decreases.",
            "none",
            [q(`max by (sequence, dc) (dispenser_ledger_high_water_mark{${L}})`, "{{sequence}} dc {{dc}}")],
            12,
          ),
          ts(
            "Rejected commands/s",
            "Commands the state machine refused, by code (exhausted, unknown sequence, ...).",
            "short",
            [
              q(
                `max by (code) (rate(dispenser_ledger_command_errors_total{${L}}[$__rate_interval]))`,
                "{{code}}",
              ),
            ],
            12,
            { min: 0 },
          ),
        ],
      },
      {
        title: "Peers",
        panels: [
          ts(
            "Messages sent/s",
            "Raft messages sent to peers.",
            "short",
            [
              q(
                `sum by (node) (rate(dispenser_ledger_peer_messages_sent_total{${L}}[$__rate_interval]))`,
                "node {{node}}",
              ),
            ],
            8,
            { min: 0 },
          ),
          ts(
            "Messages dropped/s",
            "Raft messages dropped because a peer's queue was full or it was unreachable.",
            "short",
            [
              q(
                `sum by (node) (rate(dispenser_ledger_peer_messages_dropped_total{${L}}[$__rate_interval]))`,
                "node {{node}}",
              ),
            ],
            8,
            { min: 0 },
          ),
          ts(
            "Amnesia refusals",
            "Messages refused from a peer that came back with a new data directory under its old id (DispenserLedgerPeerAmnesia).",
            "short",
            [
              q(
                `sum by (node, peer) (increase(dispenser_ledger_peer_amnesia_refusals_total{${L}}[$__rate_interval]))`,
                "node {{node}} from {{peer}}",
              ),
            ],
            8,
            { min: 0 },
          ),
          ts(
            "Refused peer messages",
            "Peer messages dropped because they broke a rule, by kind: no certificate of a member, a sender that is not the connection's, or a message no real peer sends (DispenserLedgerPeerMessagesRefused).",
            "short",
            [
              q(
                `sum by (node, kind) (increase(dispenser_ledger_peer_messages_refused_total{${L}}[$__rate_interval]))`,
                "node {{node}}: {{kind}}",
              ),
            ],
            8,
            { min: 0 },
          ),
        ],
      },
      {
        title: "Process",
        panels: [
          ts("CPU", "CPU time per second of wall time (1 = one core).", "percentunit", [
            q(`rate(process_cpu_seconds_total{${L}}[$__rate_interval])`, "{{instance}}"),
          ]),
          ts("Resident memory", "Resident set size.", "bytes", [
            q(`process_resident_memory_bytes{${L}}`, "{{instance}}"),
          ]),
          ts("Event loop lag p99", "Node.js event loop delay, 99th percentile.", "s", [
            q(`nodejs_eventloop_lag_p99_seconds{${L}}`, "{{instance}}"),
          ]),
        ],
      },
    ],
  );
}

export function edgeDashboard(): Dashboard {
  const E = 'job=~"$job", instance=~"$instance"';
  const ES = `${E}, sequence=~"$sequence"`;
  const issued = `rate(dispenser_edge_ids_issued_total{${ES}}[$__rate_interval])`;
  const wasted = `rate(dispenser_edge_ids_wasted_total{${ES}}[$__rate_interval])`;
  return dashboard(
    "dispenser-edge",
    "dispenser / edge",
    "Edge dispensers: ids issued, buffered runway, leases from the ledger, waits, waste and rejected requests.",
    [
      queryVariable("job", "Job", "label_values(dispenser_edge_resp_connections, job)"),
      queryVariable(
        "instance",
        "Edge",
        'label_values(dispenser_edge_resp_connections{job=~"$job"}, instance)',
      ),
      queryVariable(
        "sequence",
        "Sequence",
        'label_values(dispenser_edge_segment_runway{job=~"$job", instance=~"$instance"}, sequence)',
      ),
    ],
    [
      {
        title: "Overview",
        panels: [
          stat("Ids/s", "Ids issued per second by the selected edges.", "short", q(`sum(${issued})`, "")),
          stat("Edges up", "Edges answering scrapes.", "none", q(`sum(up{${E}})`, "")),
          stat(
            "RESP connections",
            "Open Redis-protocol connections.",
            "none",
            q(`sum(dispenser_edge_resp_connections{${E}})`, ""),
          ),
          stat(
            "Shortest runway",
            "Seconds the smallest buffer lasts at its sequence's current draw rate.",
            "s",
            q(`min(dispenser_edge_segment_runway{${ES}} / ${issued})`, ""),
          ),
          stat(
            "Waste",
            "Share of the ids granted to the edges that will never be issued.",
            "percentunit",
            q(`sum(${wasted}) / (sum(${issued}) + sum(${wasted}))`, ""),
            {
              thresholds: [
                { color: "green", value: null },
                { color: "orange", value: 0.1 },
              ],
            },
          ),
          stat(
            "Rejected/s",
            "Requests answered with an error, all codes.",
            "short",
            q(`sum(rate(dispenser_edge_rejected_requests_total{${E}}[$__rate_interval]))`, ""),
          ),
        ],
      },
      {
        title: "Issuing",
        panels: [
          ts(
            "Ids/s per sequence",
            "Ids issued per second, by sequence.",
            "short",
            [q(`sum by (sequence) (${issued})`, "{{sequence}}")],
            12,
            {
              min: 0,
            },
          ),
          ts(
            "Ids/s per edge",
            "Ids issued per second, by edge.",
            "short",
            [q(`sum by (instance) (${issued})`, "{{instance}}")],
            12,
            {
              min: 0,
            },
          ),
          ts(
            "Runway",
            "Ids held in the current and prefetched segments.",
            "short",
            [q(`dispenser_edge_segment_runway{${ES}}`, "{{sequence}} @ {{instance}}")],
            8,
            { min: 0 },
          ),
          ts(
            "Runway in seconds of draws",
            "How long the held ids last at the current draw rate (DispenserEdgeSegmentRunwayLow: under 0.25 s for 2 min). Sequences with ordering=global hold none by design.",
            "s",
            [q(`dispenser_edge_segment_runway{${ES}} / ${issued}`, "{{sequence}} @ {{instance}}")],
            8,
            { min: 0 },
          ),
          ts(
            "Segment size",
            "Size of the next segment to lease; adapts to the draw rate.",
            "short",
            [q(`dispenser_edge_segment_size{${ES}}`, "{{sequence}} @ {{instance}}")],
            8,
            { min: 0 },
          ),
        ],
      },
      {
        title: "Leases",
        panels: [
          ts(
            "Leases/s per sequence",
            "Segments leased from the ledger per second.",
            "short",
            [
              q(
                `sum by (sequence) (rate(dispenser_edge_leases_total{${ES}}[$__rate_interval]))`,
                "{{sequence}}",
              ),
            ],
            8,
            { min: 0 },
          ),
          ts(
            "Lease latency",
            "Time to lease a segment from the ledger.",
            "s",
            quantiles("dispenser_edge_lease_seconds", "instance", E, "{{instance}}"),
          ),
          ts(
            "Lease errors/s",
            "Failed leases by error code (DispenserEdgeLeaseErrors: more than 3 in 5 min, for 5 min).",
            "short",
            [
              q(
                `sum by (instance, code) (rate(dispenser_edge_lease_errors_total{${E}}[$__rate_interval]))`,
                "{{code}} @ {{instance}}",
              ),
            ],
            8,
            { min: 0 },
          ),
          ts(
            "Draws that waited/s",
            "Draws that found no buffered id and waited for a lease (every draw of a global sequence does).",
            "short",
            [
              q(
                `sum by (instance) (rate(dispenser_edge_issue_wait_seconds_count{${E}}[$__rate_interval]))`,
                "{{instance}}",
              ),
            ],
            12,
            { min: 0 },
          ),
          ts(
            "Draw wait",
            "How long those draws waited (DispenserEdgeIssueWaitSlow: p99 over 100 ms for 10 min).",
            "s",
            quantiles("dispenser_edge_issue_wait_seconds", "instance", E, "{{instance}}"),
            12,
          ),
        ],
      },
      {
        title: "Waste and rejections",
        panels: [
          ts(
            "Wasted ids/s per sequence",
            "Ids granted that will never be issued: crash losses, tails not taken back, burnt global leftovers.",
            "short",
            [q(`sum by (sequence) (${wasted})`, "{{sequence}}")],
            8,
            { min: 0 },
          ),
          ts(
            "Waste ratio per sequence",
            "Wasted / (issued + wasted) (DispenserEdgeWasteHigh: over 10% for 15 min).",
            "percentunit",
            [
              q(
                `sum by (sequence) (${wasted}) / (sum by (sequence) (${issued}) + sum by (sequence) (${wasted}))`,
                "{{sequence}}",
              ),
            ],
            8,
            { min: 0 },
          ),
          ts(
            "Rejected requests/s",
            "Requests answered with an error, by API and code (DispenserEdgeRejectedRequests counts unavailable, deadline, overloaded, exhausted and internal).",
            "short",
            [
              q(
                `sum by (api, code) (rate(dispenser_edge_rejected_requests_total{${E}}[$__rate_interval]))`,
                "{{api}} {{code}}",
              ),
            ],
            8,
            { min: 0 },
          ),
          ts(
            "Grants refused: the ledger forgot",
            "Grants an edge refused because the ledger answered with another cluster identity or below what it had granted this edge (DispenserEdgeLedgerForgot).",
            "short",
            [
              q(
                `sum by (instance, reason) (increase(dispenser_edge_grants_refused_total{${E}}[$__rate_interval]))`,
                "{{instance}} {{reason}}",
              ),
            ],
            8,
            { min: 0 },
          ),
          ts(
            "Type 1 draws refused: permutation secret mismatch",
            "Draws of a type 1 sequence refused because the edge's --permutation-secret is not the one the sequence is bound to (DispenserEdgeKeyMismatch).",
            "short",
            [
              q(
                `sum by (instance, sequence) (increase(dispenser_edge_key_mismatch_total{${E}}[$__rate_interval]))`,
                "{{instance}} {{sequence}}",
              ),
            ],
            8,
            { min: 0 },
          ),
        ],
      },
      {
        title: "DC reserve (the pool in the DC's Redis Cluster)",
        panels: [
          ts(
            "Reserve runway",
            "Seconds the DC's reserve pool lasts at the DC's draw rate, as each edge saw it at its last carve (DispenserDcReserveLow: under 5 minutes while on the reserve).",
            "s",
            [q(`dispenser_edge_reserve_runway_seconds{${ES}}`, "{{sequence}} @ {{instance}}")],
            8,
            { min: 0 },
          ),
          ts(
            "On the reserve",
            "1 while the ledger does not answer and the edge issues from its DC's reserve pool.",
            "none",
            [q(`dispenser_edge_on_reserve{${E}}`, "{{instance}}")],
            8,
            { min: 0 },
          ),
          ts(
            "Ids in the reserve",
            "Ids left in the DC's pool of each sequence.",
            "short",
            [q(`max by (sequence) (dispenser_edge_reserve_ids{${ES}})`, "{{sequence}}")],
            8,
            { min: 0 },
          ),
          ts(
            "Reserve ids burnt",
            "Ids of the reserve that will never be issued: carves not confirmed on the replicas (WAIT), windows whose add failed, ids skipped below an edge's own.",
            "short",
            [
              q(
                `sum by (instance, sequence) (increase(dispenser_edge_reserve_burnt_ids_total{${ES}}[$__rate_interval]))`,
                "{{sequence}} @ {{instance}}",
              ),
            ],
            8,
            { min: 0 },
          ),
          ts(
            "Reserve windows and pool errors",
            "Ledger windows leased for the pool by outcome, and failed pool calls (the edge then used the ledger directly).",
            "short",
            [
              q(
                `sum by (outcome) (increase(dispenser_edge_reserve_windows_total{${E}}[$__rate_interval]))`,
                "windows {{outcome}}",
              ),
              q(
                `sum by (instance) (increase(dispenser_edge_reserve_errors_total{${E}}[$__rate_interval]))`,
                "errors {{instance}}",
              ),
            ],
            8,
            { min: 0 },
          ),
        ],
      },
      {
        title: "Connections and process",
        panels: [
          ts("RESP connections", "Open Redis-protocol connections per edge.", "none", [
            q(`dispenser_edge_resp_connections{${E}}`, "{{instance}}"),
          ]),
          ts("CPU", "CPU time per second of wall time (1 = one core).", "percentunit", [
            q(`rate(dispenser_edge_process_cpu_seconds_total{${E}}[$__rate_interval])`, "{{instance}}"),
          ]),
          ts("Resident memory", "Resident set size.", "bytes", [
            q(`dispenser_edge_process_resident_memory_bytes{${E}}`, "{{instance}}"),
          ]),
          ts(
            "Event loop lag p99",
            "Node.js event loop delay, 99th percentile: draws queue behind a busy loop.",
            "s",
            [q(`dispenser_edge_nodejs_eventloop_lag_p99_seconds{${E}}`, "{{instance}}")],
            12,
          ),
          ts(
            "Heap used",
            "V8 heap in use.",
            "bytes",
            [q(`dispenser_edge_nodejs_heap_size_used_bytes{${E}}`, "{{instance}}")],
            12,
          ),
        ],
      },
    ],
  );
}

/** File name (under deploy/grafana/dashboards) → dashboard. */
export function dashboards(): ReadonlyMap<string, Dashboard> {
  return new Map([
    ["dispenser-ledger.json", ledgerDashboard()],
    ["dispenser-edge.json", edgeDashboard()],
  ]);
}

/** The checked-in text of each dashboard: JSON as the repository's prettier settings print it. */
export async function render(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const [name, d] of dashboards()) {
    const file = `${dir}/${name}`;
    const options = (await resolveConfig(file)) ?? {};
    out.set(name, await format(JSON.stringify(d), { ...options, filepath: file }));
  }
  return out;
}
