// What one durable write costs on this machine's disk: a synced LevelDB batch (what every ledger
// node does per Ready), split into its parts: the same batch unsynced (the round trip to libuv's
// thread pool and LevelDB's own work), fdatasync after appending to a file (what LevelDB does
// underneath) on the main thread and through the thread pool, and fdatasync after overwriting a
// preallocated file (what etcd's WAL does: the file's size never changes, so the filesystem has
// no metadata to write). Each alone, then three processes at once (a 3-node cluster on one disk).
//
//   pnpm bench:fsync [--writes 1000]
import { spawn } from "node:child_process";
import {
  closeSync,
  fdatasync,
  fdatasyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Level } from "level";
import { fmt, posInt } from "./support.js";

const MODES = ["level", "level-nosync", "append", "append-pool", "prealloc"] as const;
type Mode = (typeof MODES)[number];

const { values: args } = parseArgs({
  options: {
    writes: { type: "string", default: "1000" },
    child: { type: "string" },
    dir: { type: "string" },
  },
});
const WRITES = posInt("writes", args.writes);
const RECORD = Buffer.alloc(200, 1);

/** Mean µs per write of `mode` in `dir`. */
async function measure(mode: Mode, dir: string): Promise<number> {
  if (mode === "level" || mode === "level-nosync") {
    const db = new Level<Buffer, Buffer>(join(dir, "db"), { keyEncoding: "buffer", valueEncoding: "buffer" });
    await db.open();
    const sync = mode === "level";
    const t0 = performance.now();
    for (let i = 0; i < WRITES; i++)
      await db.batch([{ type: "put", key: Buffer.from(`k${i}`), value: RECORD }], { sync });
    const us = ((performance.now() - t0) * 1000) / WRITES;
    await db.close();
    return us;
  }
  const fd = openSync(join(dir, "file"), "w");
  if (mode === "prealloc") {
    writeSync(fd, Buffer.alloc(WRITES * RECORD.byteLength + 4096));
    fdatasyncSync(fd);
  }
  const pool = (): Promise<void> =>
    new Promise((resolve, reject) => fdatasync(fd, (e) => (e ? reject(e) : resolve())));
  const t0 = performance.now();
  for (let i = 0; i < WRITES; i++) {
    writeSync(fd, RECORD, 0, RECORD.byteLength, i * RECORD.byteLength);
    if (mode === "append-pool") await pool();
    else fdatasyncSync(fd);
  }
  const us = ((performance.now() - t0) * 1000) / WRITES;
  closeSync(fd);
  return us;
}

/** Run `mode` in `n` child processes at once; their mean µs per write. */
async function concurrently(mode: Mode, n: number, root: string): Promise<number[]> {
  const runs = Array.from({ length: n }, (_, i) => {
    const dir = join(root, `${mode}-${n}-${i}`);
    const child = spawn(
      process.execPath,
      ["--import", "tsx", import.meta.filename, "--child", mode, "--dir", dir, "--writes", String(WRITES)],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    return new Promise<number>((resolve, reject) =>
      child.once("exit", (code) =>
        code === 0 ? resolve(Number(out.trim())) : reject(new Error(`child exited ${code}`)),
      ),
    );
  });
  return Promise.all(runs);
}

async function main(): Promise<void> {
  if (args.child) {
    mkdirSync(args.dir!, { recursive: true });
    console.log(await measure(args.child as Mode, args.dir!));
    return;
  }
  const root = mkdtempSync(join(tmpdir(), "bench-fsync-"));
  try {
    console.log(`${WRITES} durable writes of ${RECORD.byteLength} bytes per process, in ${root}`);
    console.log("mode          1 process µs/write   3 processes at once µs/write");
    for (const mode of MODES) {
      const one = await concurrently(mode, 1, root);
      const three = await concurrently(mode, 3, root);
      console.log(
        `${mode.padEnd(12)}  ${fmt(one[0]!, 0).padStart(19)}   ${three.map((x) => fmt(x, 0)).join(" / ")}`,
      );
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(`bench:fsync failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
