// The DC plane's long promise, run as it is meant: three DCs of real processes (test/support/three-dc.ts:
// a voter, edges and a 6-process Redis Cluster each, proxies on every inter-DC link), load on every
// edge, and one DC cut off from the other two for ten minutes. Prints, once a minute, what each DC
// served and failed and the cut-off DC's reserve as its edges report it (INFO), then the totals.
//
//   pnpm soak:dc                                   # 10 minutes cut off, 1,000 ids/s per edge
//   pnpm soak:dc -- --cut-seconds 120 --rate 500   # shorter
//
// Not part of `pnpm test` (it runs for more than 11 minutes). Exit code 1 when an id repeated or
// the cut-off DC failed a draw.
import { parseArgs } from "node:util";
import { DcLoad } from "../support/dc-load.js";
import { ThreeDcs } from "../support/three-dc.js";
import { createWhenUp } from "../support/ledger-helpers.js";
import { fmt, log, posInt, sleep } from "./support.js";

const argv = process.argv.slice(2);
const { values } = parseArgs({
  // `pnpm soak:dc -- --flag` passes the "--" along.
  args: argv[0] === "--" ? argv.slice(1) : argv,
  options: {
    "cut-seconds": { type: "string", default: "600" },
    rate: { type: "string", default: "1000" },
    "edges-per-dc": { type: "string", default: "2" },
    "warmup-seconds": { type: "string", default: "30" },
    "reserve-seconds": { type: "string", default: "900" },
    dc: { type: "string", default: "2" },
  },
});
const CUT_S = posInt("--cut-seconds", values["cut-seconds"], 1, 86_400);
const RATE = posInt("--rate", values.rate, 10, 100_000);
const EDGES = posInt("--edges-per-dc", values["edges-per-dc"], 1, 8);
const WARMUP_S = posInt("--warmup-seconds", values["warmup-seconds"], 6, 3_600);
const RESERVE_S = posInt("--reserve-seconds", values["reserve-seconds"], 1, 86_400);
const CUT_DC = posInt("--dc", values.dc, 0, 2);
/** Ids per GETN: ten calls a second per edge. */
const BATCH = Math.max(1, Math.round(RATE / 10));
const NAME = "soak";

function field(info: string, k: string): string | undefined {
  return new RegExp(`^${k}:(.*)$`, "m").exec(info)?.[1]?.trim();
}

async function main(): Promise<number> {
  const dcs = new ThreeDcs({ edgesPerDc: EDGES, edgeFlags: ["--reserve-seconds", String(RESERVE_S)] });
  const stopAll = async (): Promise<void> => {
    await dcs.stop().catch(() => undefined);
  };
  process.once("SIGINT", () => void stopAll().then(() => process.exit(130)));
  log(`starting three DCs (${EDGES} edges each), ${RATE} ids/s per edge, dc ${CUT_DC} cut off ${CUT_S} s`);
  await dcs.start();
  try {
    await createWhenUp(dcs.edges[0]!.client, NAME, ["type", "3", "datacenters", "3"], 60_000);
    const load = new DcLoad(NAME, BATCH).start(dcs.edges);
    const { served, failed } = load;
    const reserveOf = async (): Promise<string> => {
      const info = (await dcs
        .edgesOf(CUT_DC)[0]!
        .client.call("INFO", NAME)
        .catch(() => "")) as string;
      const ids = field(info, "dc_reserve_ids") ?? "?";
      const s = field(info, "dc_reserve_runway_seconds");
      return `reserve ${ids} ids, runway ${s ? fmt(Number(s), 0) : "?"} s, on_reserve ${field(info, "on_reserve") ?? "?"}`;
    };
    log(`warming up ${WARMUP_S} s: the edges measure the DC's rate and fill its reserve`);
    await sleep(WARMUP_S * 1000);
    log(`before the cut: ${await reserveOf()}`);
    const before = [...served];
    const failedBefore = [...failed];
    dcs.setLinks(CUT_DC, "blackhole");
    const cutAt = performance.now();
    while (performance.now() - cutAt < CUT_S * 1000) {
      const left = CUT_S * 1000 - (performance.now() - cutAt);
      await sleep(Math.min(60_000, left));
      const s = served.map((n, dc) => n - before[dc]!);
      const f = failed.map((n, dc) => n - failedBefore[dc]!);
      log(
        `cut +${fmt((performance.now() - cutAt) / 1000, 0)} s: served ${s.join("/")}, failed ${f.join("/")}; dc ${CUT_DC}: ${await reserveOf()}`,
      );
    }
    const during = served.map((n, dc) => n - before[dc]!);
    const failedDuring = failed.map((n, dc) => n - failedBefore[dc]!);
    const reserveLeft = await reserveOf();
    dcs.setLinks(CUT_DC, "pass");
    log("healed; drawing 10 s more");
    await sleep(10_000);
    await load.stop();
    console.log(
      `soak: dc ${CUT_DC} cut off ${CUT_S} s at ${RATE} ids/s per edge: served while cut ${during.join("/")}, ` +
        `failed while cut ${failedDuring.join("/")}, failed in all ${failed.join("/")}, duplicated ${load.duplicated}, ` +
        `${load.seen.size} ids; at the end of the cut: ${reserveLeft}`,
    );
    return load.duplicated === 0 && failedDuring[CUT_DC] === 0 ? 0 : 1;
  } finally {
    await stopAll();
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(2);
  },
);
