// Output helpers: aligned tables for people, JSON (bigints as decimal strings) for scripts, and the
// names the RESP surface uses for the definition's enums.
import { AUTO_DISK_FROM_PB, LAYOUT_FROM_PB, ORDERING_FROM_PB } from "@dispenser/domain";
import type { SequenceDefinition } from "@dispenser/proto";
import type { AutoDisk, Layout, Ordering } from "@dispenser/proto";
import { SequenceType } from "@dispenser/proto";

/** JSON with bigints as decimal strings (never a lossy number). */
export function toJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === "bigint" ? x.toString() : x));
}

/** Rows under a header, columns padded to their widest cell. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}

// The domain's tables, by the wire's enum values.
export const AUTO_DISK_NAMES: ReadonlyMap<AutoDisk, string> = AUTO_DISK_FROM_PB;
export const ORDERING_NAMES: ReadonlyMap<Ordering, string> = ORDERING_FROM_PB;
export const LAYOUT_NAMES: ReadonlyMap<Layout, string> = LAYOUT_FROM_PB;

/** The value of `names` whose key matches `text`, ignoring case and '-' versus '_'. */
export function byName<T>(names: ReadonlyMap<T, string>, text: string): T | undefined {
  const norm = (s: string): string => s.toLowerCase().replace(/_/g, "-");
  for (const [k, v] of names) if (norm(v) === norm(text)) return k;
  return undefined;
}

/** A definition as plain data with the RESP field names. */
export interface SequenceView {
  name: string;
  type: number;
  length: number;
  starting: string;
  step: string;
  datacenters: number;
  layout: string;
  ordering: string;
  auto_disk: string;
  max_segment_size: string;
  /** "default" when unset: each edge's --reserve-seconds. */
  reserve_seconds: string;
  revision: string;
  created_at: string;
}

export function sequenceView(d: SequenceDefinition): SequenceView {
  return {
    name: d.name,
    type: d.type,
    length: d.length ?? 0,
    starting: (d.starting ?? 0n).toString(),
    step: (d.step ?? 0n).toString(),
    datacenters: d.datacenters ?? 0,
    layout: LAYOUT_NAMES.get(d.layout) ?? "unspecified",
    ordering: ORDERING_NAMES.get(d.ordering) ?? "unspecified",
    auto_disk: AUTO_DISK_NAMES.get(d.autoDisk) ?? "unspecified",
    max_segment_size: (d.limits?.maxSegmentSize ?? 0n).toString(),
    reserve_seconds: d.reserveSeconds === undefined ? "default" : String(d.reserveSeconds),
    revision: d.revision.toString(),
    created_at: d.createdAtMs > 0n ? new Date(Number(d.createdAtMs)).toISOString() : "",
  };
}

/** `key: value` lines, keys padded. */
export function fields(obj: Readonly<Record<string, string | number | boolean>>): string {
  const w = Math.max(...Object.keys(obj).map((k) => k.length)) + 1;
  return Object.entries(obj)
    .map(([k, v]) => `${`${k}:`.padEnd(w)} ${String(v)}`)
    .join("\n")
    .concat("\n");
}

/** An id as text: zero-padded to the length for the fixed-length types 1 and 2. */
export function idText(id: bigint, def: Pick<SequenceDefinition, "type" | "length"> | undefined): string {
  const s = id.toString();
  const fixed =
    def?.type === SequenceType.SEQUENCE_TYPE_RANDOM_FIXED_LENGTH ||
    def?.type === SequenceType.SEQUENCE_TYPE_INCREASING_FIXED_LENGTH;
  const length = def?.length ?? 0;
  return fixed && length > 0 ? s.padStart(length, "0") : s;
}
