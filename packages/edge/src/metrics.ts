import type { Registry } from "prom-client";
import type { ReserveSample } from "./issuing/dc-reserve.js";
import { Counter, Gauge, Histogram } from "prom-client";
import { BoundedLabels } from "@dispenser/plumbing";

export interface SequenceSample {
  readonly name: string;
  readonly runway: bigint;
  readonly size: bigint;
  readonly generated: bigint;
  readonly wasted: bigint;
  readonly leases: number;
}

/**
 * The edge's Prometheus metrics, on a registry the process passes in. Per-sequence series are
 * bounded by `maxSequenceSeries` (BoundedLabels); counts and gauges of the sequences past it are
 * summed under `sequence="(other)"` (the reserve's runway in seconds keeps their shortest).
 * Per-sequence counts are read from the issuers at scrape time, so the issuing hot path touches
 * no metric.
 */
export class EdgeMetrics {
  readonly issued: Counter<"sequence">;
  readonly wasted: Counter<"sequence">;
  readonly leases: Counter<"sequence">;
  readonly leaseSeconds: Histogram;
  readonly leaseErrors: Counter<"code">;
  readonly issueWaitSeconds: Histogram;
  readonly rejected: Counter<"api" | "code">;
  readonly keyMismatches: Counter<"sequence">;
  readonly grantsRefused: Counter<"reason">;
  readonly respConnections: Gauge;
  readonly runway: Gauge<"sequence">;
  readonly segmentSize: Gauge<"sequence">;
  readonly reserveBurnt: Counter<"sequence">;
  readonly reserveWindows: Counter<"outcome">;
  readonly reserveErrors: Counter;

  /** The label of a sequence (its name, or OTHER_SEQUENCES past the bound). */
  readonly sequenceLabel: (name: string) => string;

  constructor(
    registry: Registry,
    collect: () => Iterable<SequenceSample>,
    reserve: () => Iterable<ReserveSample> = () => [],
    maxSequenceSeries = 1_000,
  ) {
    const registers = [registry];
    const labels = new BoundedLabels(maxSequenceSeries);
    const seq = (this.sequenceLabel = (name: string): string => labels.of(name));
    const issued = (this.issued = new Counter({
      name: "dispenser_edge_ids_issued_total",
      help: "Ids issued by this edge",
      labelNames: ["sequence"],
      registers,
      collect() {
        issued.reset();
        for (const s of collect()) issued.inc({ sequence: seq(s.name) }, Number(s.generated));
      },
    }));
    const wasted = (this.wasted = new Counter({
      name: "dispenser_edge_ids_wasted_total",
      help: "Ids granted to this edge that it will never issue",
      labelNames: ["sequence"],
      registers,
      collect() {
        wasted.reset();
        for (const s of collect()) wasted.inc({ sequence: seq(s.name) }, Number(s.wasted));
      },
    }));
    const leases = (this.leases = new Counter({
      name: "dispenser_edge_leases_total",
      help: "Segments leased from the ledger",
      labelNames: ["sequence"],
      registers,
      collect() {
        leases.reset();
        for (const s of collect()) leases.inc({ sequence: seq(s.name) }, Number(s.leases));
      },
    }));
    this.leaseSeconds = new Histogram({
      name: "dispenser_edge_lease_seconds",
      help: "Time to lease a segment from the ledger",
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5],
      registers,
    });
    this.leaseErrors = new Counter({
      name: "dispenser_edge_lease_errors_total",
      help: "Failed leases, by error code",
      labelNames: ["code"],
      registers,
    });
    this.issueWaitSeconds = new Histogram({
      name: "dispenser_edge_issue_wait_seconds",
      help: "Time draws waited for a segment (draws served from the buffer are not observed)",
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5],
      registers,
    });
    this.grantsRefused = new Counter({
      name: "dispenser_edge_grants_refused_total",
      help: "Grants refused because the ledger forgot what it granted: another cluster identity, or a range below this edge's mark",
      labelNames: ["reason"],
      registers,
    });
    this.keyMismatches = new Counter({
      name: "dispenser_edge_key_mismatch_total",
      help: "Draws of a type 1 sequence refused because it is bound to another permutation secret",
      labelNames: ["sequence"],
      registers,
    });
    this.rejected = new Counter({
      name: "dispenser_edge_rejected_requests_total",
      help: "Requests answered with an error, by API and error code",
      labelNames: ["api", "code"],
      registers,
    });
    this.respConnections = new Gauge({
      name: "dispenser_edge_resp_connections",
      help: "Open Redis-protocol connections",
      registers,
    });
    const runway = (this.runway = new Gauge({
      name: "dispenser_edge_segment_runway",
      help: "Ids held in the current and prefetched segments",
      labelNames: ["sequence"],
      registers,
      collect() {
        runway.reset();
        for (const s of collect()) runway.inc({ sequence: seq(s.name) }, Number(s.runway));
      },
    }));
    const reserveIds = new Gauge({
      name: "dispenser_edge_reserve_ids",
      help: "Ids left in the DC's reserve pool of a sequence, as this edge saw at its last carve",
      labelNames: ["sequence"],
      registers,
      collect() {
        reserveIds.reset();
        for (const r of reserve()) reserveIds.inc({ sequence: seq(r.name) }, r.left);
      },
    });
    const runwaySeconds = new Gauge({
      name: "dispenser_edge_reserve_runway_seconds",
      help: "Seconds the DC's reserve pool of a sequence lasts at the DC's draw rate (absent while the rate is unknown)",
      labelNames: ["sequence"],
      registers,
      collect() {
        runwaySeconds.reset();
        const shortest = new Map<string, number>();
        for (const r of reserve()) {
          if (r.runwaySeconds === undefined) continue;
          const l = seq(r.name);
          shortest.set(l, Math.min(shortest.get(l) ?? Infinity, r.runwaySeconds));
        }
        for (const [l, v] of shortest) runwaySeconds.set({ sequence: l }, v);
      },
    });
    const onReserve = new Gauge({
      name: "dispenser_edge_on_reserve",
      help: "1 while the ledger does not answer this edge (its refills and probes fail) and it issues from its DC's reserve pool",
      registers,
      collect() {
        let on = 0;
        for (const r of reserve()) if (r.onReserve) on = 1;
        onReserve.set(on);
      },
    });
    this.reserveBurnt = new Counter({
      name: "dispenser_edge_reserve_burnt_ids_total",
      help: "Ids of the DC's reserve that will never be issued: unconfirmed carves, windows not added, ids skipped, pools deleted as untrusted (a Redis failover or restart)",
      labelNames: ["sequence"],
      registers,
    });
    this.reserveWindows = new Counter({
      name: "dispenser_edge_reserve_windows_total",
      help: "Ledger windows this edge leased for the DC's reserve pool, by outcome (added, kept as its own segment, burnt)",
      labelNames: ["outcome"],
      registers,
    });
    this.reserveErrors = new Counter({
      name: "dispenser_edge_reserve_errors_total",
      help: "Calls to the DC's reserve pool that failed (the edge used the ledger directly meanwhile)",
      registers,
    });
    const size = (this.segmentSize = new Gauge({
      name: "dispenser_edge_segment_size",
      help: "Size of the next segment to lease (adapts to the draw rate)",
      labelNames: ["sequence"],
      registers,
      collect() {
        size.reset();
        for (const s of collect()) size.inc({ sequence: seq(s.name) }, Number(s.size));
      },
    }));
  }
}
