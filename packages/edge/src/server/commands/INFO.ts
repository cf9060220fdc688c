// INFO [section | sequence]: the server's info as Redis sections, or one sequence's.
import { checkSequenceName } from "../../issuing/names.js";
import type { Handler, ServerInfo } from "./handler.js";
import { arityError, settle } from "./handler.js";
import type { Dispenser } from "../../issuing/dispenser.js";

/** Sections of Redis's INFO: `INFO <section>` answers the server's info, `INFO <name>` a sequence's. */
const INFO_SECTIONS = new Set([
  "server",
  "clients",
  "memory",
  "persistence",
  "stats",
  "replication",
  "cpu",
  "modules",
  "keyspace",
  "all",
  "default",
  "everything",
  "commandstats",
  "errorstats",
  "latencystats",
  "cluster",
]);

function serverInfo(s: ServerInfo, d: Dispenser): string {
  const up = Math.floor((Date.now() - s.startedAtMs) / 1000);
  return [
    "# Server",
    `redis_version:${s.version}`,
    "redis_mode:standalone",
    `dispenser_version:${s.version}`,
    `dispenser_dc:${d.dc}`,
    `dispenser_edge_id:${d.edgeId}`,
    `tcp_port:${s.port}`,
    `uptime_in_seconds:${up}`,
    "loading:0",
    `dispenser_redis_plane:${s.dcStats ? "on" : "off"}`,
    "",
    "# Clients",
    `connected_clients:${s.connections()}`,
    "",
    "# Persistence",
    "loading:0",
    "",
  ].join("\r\n");
}

/** INFO [section | sequence]. */
export const info: Handler = (d, args, w, _c, s) => {
  if (args.length > 2) return w.error(arityError("info"));
  const arg = args[1];
  if (arg === undefined || INFO_SECTIONS.has(arg.toLowerCase())) return w.bulkString(serverInfo(s, d));
  return settle(
    (async () => {
      checkSequenceName(arg);
      const i = await d.sequence(arg);
      const def = i.def;
      const total = i.generated + i.wasted;
      const rate = total === 0n ? 0 : Number(i.wasted) / Number(total);
      const lines = [
        `name:${def.name}`,
        `type:${def.type}`,
        `length:${def.length ?? 0}`,
        `starting:${def.starting}`,
        `step:${def.step}`,
        `current:${i.last === undefined ? "" : i.map.text(i.last)}`,
        `auto_disk:${def.autoDisk}`,
        `generated:${i.generated}`,
        `wasted:${i.wasted}`,
        `waste_rate:${rate.toFixed(6)}`,
        `dc:${def.ordering === "global" ? 0 : d.dc}`,
        `datacenters:${def.datacenters}`,
        `ordering:${def.ordering}`,
        `layout:${def.layout}`,
        // Every strategy issues from ledger grants only (memory included): none can repeat an id.
        "durable:1",
        `runway:${i.runway}`,
        `segment_size:${i.segmentSize}`,
        `revision:${i.revision}`,
      ];
      if (s.dcStats) {
        const dc = await s.dcStats(arg);
        if (typeof dc === "string") lines.push(`dc_stats:unavailable (${dc})`);
        else {
          lines.push(`dc_generated:${dc.generated}`, `dc_wasted:${dc.wasted}`, `dc_edges:${dc.edgesSeen}`);
        }
      } else lines.push("dc_stats:off (no Redis plane)");
      const reserve = d.reserveOf(arg);
      if (reserve === "off") lines.push("dc_reserve:off");
      else if (reserve !== undefined) {
        lines.push(
          `dc_reserve_ids:${reserve.left}`,
          `dc_reserve_runway_seconds:${reserve.runwaySeconds === undefined ? "" : Math.floor(reserve.runwaySeconds)}`,
          `on_reserve:${reserve.onReserve ? 1 : 0}`,
        );
      }
      w.bulkString(lines.join("\r\n") + "\r\n");
    })(),
    w,
  );
};
