import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { X509Certificate } from "node:crypto";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { collectDefaultMetrics, Registry } from "prom-client";
import { beforeAll, describe, expect, it } from "vitest";
import { render } from "../deploy/grafana/dashboards.js";
import { Users } from "../packages/edge/src/auth/users.js";

// The deployment material under deploy/ and docker-compose.cluster.yml, checked offline: the
// compose file and the Prometheus configuration with their own tools when installed, alert rules
// with their promtool unit tests, dashboards regenerated from code, every metric a query names
// against the metric definitions, and the Kubernetes manifests' structure and flags against the
// processes' own --help.

const REPO = resolve(import.meta.dirname, "..");
const DEPLOY = join(REPO, "deploy");
const exec = promisify(execFile);
const requireCjs = createRequire(import.meta.url);
const yaml = requireCjs("js-yaml") as { load(text: string): unknown; loadAll(text: string): unknown[] };

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
function obj(v: unknown, what: string): Obj {
  if (!isObj(v)) throw new Error(`${what}: expected a mapping, got ${JSON.stringify(v)}`);
  return v;
}
function arr(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new Error(`${what}: expected a list, got ${JSON.stringify(v)}`);
  return v as unknown[];
}
function str(v: unknown, what: string): string {
  if (typeof v !== "string") throw new Error(`${what}: expected a string, got ${JSON.stringify(v)}`);
  return v;
}
/** obj at a dotted path, e.g. at(doc, "spec.template.spec"). */
function at(v: unknown, path: string): unknown {
  let cur = v;
  for (const key of path.split(".")) cur = obj(cur, path)[key];
  return cur;
}

async function loadYaml(file: string): Promise<unknown> {
  return yaml.load(await readFile(file, "utf8"));
}

async function tool(name: string): Promise<boolean> {
  return exec("sh", ["-c", `command -v ${name}`]).then(
    () => true,
    () => false,
  );
}

/** Runs a command; on failure, the error carries its output. */
async function runTool(cmd: string, args: string[], cwd = REPO): Promise<string> {
  try {
    const r = await exec(cmd, args, { cwd, encoding: "utf8", timeout: 20_000 });
    return r.stdout + r.stderr;
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(" ")} failed:\n${x.stdout ?? ""}${x.stderr ?? x.message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The processes' flags, from their --help.

type Proc = "ledger" | "edge";
/** The production image's program (Dockerfile, deploy/image/bundle.ts). */
const IMAGE_BIN = "/app/dist/bin/dispenser.mjs";
const MAIN: Record<Proc, string> = {
  ledger: "packages/ledger/src/main.ts",
  edge: "packages/edge/src/main.ts",
};
const REQUIRED: Record<Proc, readonly string[]> = { ledger: ["id", "data-dir", "peers"], edge: ["ledger"] };

async function flagsOf(p: Proc): Promise<Set<string>> {
  const out = await runTool(process.execPath, ["--import", "tsx", MAIN[p], "--help"]);
  const flags = new Set([...out.matchAll(/^\s+--([a-z][a-z-]*)\s/gm)].map((m) => m[1]!));
  if (flags.size < 5) throw new Error(`too few flags in ${p} --help:\n${out}`);
  return flags;
}

/**
 * Flags a process is started with: `args` after the entry point (each `--flag` or `--flag=value`)
 * plus DISPENSER_<PROC>_<FLAG> variables. Returns flag → value ("" for a bare flag).
 */
function startFlags(
  p: Proc,
  known: Set<string>,
  args: readonly string[],
  env: Readonly<Record<string, string>>,
  where: string,
): Map<string, string> {
  const out = new Map<string, string>();
  for (const a of args) {
    const m = /^--([a-z][a-z-]*)(?:=(.*))?$/s.exec(a);
    expect(m, `${where}: "${a}" is not --flag or --flag=value`).not.toBeNull();
    expect(known, `${where}: ${p} has no flag --${m![1]}`).toContain(m![1]);
    // The processes split "--flag=value" at "=" and keep two parts: a value with "=" is cut short.
    expect(m![2]?.includes("=") ?? false, `${where}: "${a}": pass a value with "=" in the environment`).toBe(
      false,
    );
    out.set(m![1]!, m![2] ?? "");
  }
  const prefix = `DISPENSER_${p.toUpperCase()}_`;
  for (const [k, v] of Object.entries(env)) {
    if (!k.startsWith("DISPENSER_")) continue;
    expect(k.startsWith(prefix), `${where}: ${k} is not a ${p} variable`).toBe(true);
    const flag = k.slice(prefix.length).toLowerCase().replace(/_/g, "-");
    expect(known, `${where}: ${k} names no ${p} flag`).toContain(flag);
    if (!out.has(flag)) out.set(flag, v);
  }
  for (const r of REQUIRED[p]) expect(out.has(r), `${where}: ${p} needs --${r}`).toBe(true);
  return out;
}

const portOf = (hostPort: string): number => Number(hostPort.slice(hostPort.lastIndexOf(":") + 1));

// ---------------------------------------------------------------------------------------------
// Metric names the processes export, parsed from their definitions.

interface MetricDef {
  readonly labels: ReadonlySet<string>;
}

async function definedMetrics(): Promise<Map<string, MetricDef>> {
  const defs = new Map<string, MetricDef>();
  const pkgs = await readdir(join(REPO, "packages"));
  for (const pkg of pkgs) {
    const file = join(REPO, "packages", pkg, "src", "metrics.ts");
    if (!existsSync(file)) continue;
    const src = await readFile(file, "utf8");
    const starts = [...src.matchAll(/new (Counter|Gauge|Histogram|Summary)\s*(?:<[^>]*>)?\(\{/g)];
    starts.forEach((m, i) => {
      const body = src.slice(m.index, starts[i + 1]?.index ?? src.length);
      const name = /name:\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"/.exec(body)?.[1];
      if (name === undefined) throw new Error(`${file}: a ${m[1]} without a name`);
      const labelList = /labelNames:\s*\[([^\]]*)\]/.exec(body)?.[1] ?? "";
      const labels = new Set([...labelList.matchAll(/"([^"]+)"/g)].map((l) => l[1]!));
      const names =
        m[1] === "Histogram"
          ? [name, `${name}_bucket`, `${name}_sum`, `${name}_count`]
          : m[1] === "Summary"
            ? [name, `${name}_sum`, `${name}_count`]
            : [name];
      for (const n of names) defs.set(n, { labels });
    });
  }
  // prom-client's default metrics: the ledger registers them unprefixed, the edge with its prefix.
  for (const prefix of ["", "dispenser_edge_"]) {
    const reg = new Registry();
    collectDefaultMetrics({ register: reg, prefix });
    for (const m of await reg.getMetricsAsJSON()) {
      // The typings declare a numeric enum; the objects carry the type's name.
      const type: unknown = m.type;
      const suffixes = type === "histogram" ? ["", "_bucket", "_sum", "_count"] : [""];
      for (const s of suffixes) defs.set(`${m.name}${s}`, { labels: new Set() });
    }
  }
  defs.set("up", { labels: new Set() });
  return defs;
}

const PROMQL_WORDS = new Set(
  (
    "sum min max avg count stddev stdvar topk bottomk quantile count_values group by without on " +
    "ignoring group_left group_right bool and or unless offset Inf NaN inf nan"
  ).split(" "),
);
/** Labels every scraped series has. */
const TARGET_LABELS = new Set(["job", "instance"]);

/** Metric names and selector labels a PromQL expression (or a Grafana variable query) uses. */
function promqlUses(exprIn: string): {
  metrics: string[];
  selectors: [string, string[]][];
  grouping: string[];
} {
  const expr = exprIn.replace(/\$\{?\w+\}?/g, "x");
  const noStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const selectors: [string, string[]][] = [];
  for (const m of noStrings.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}/g)) {
    selectors.push([m[1]!, [...m[2]!.matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1]!)]);
  }
  const grouping: string[] = [];
  let s = noStrings.replace(/\{[^}]*\}/g, "").replace(/\[[^\]]*\]/g, "");
  s = s.replace(
    /\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g,
    (_all, kw: string, list: string) => {
      grouping.push(
        ...list
          .split(",")
          .map((l) => l.trim())
          .filter((l) => l.length > 0),
      );
      return kw;
    },
  );
  // label_values(metric, label): the label is not a metric.
  s = s.replace(
    /label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*,?\s*([a-zA-Z_]\w*)\s*\)/g,
    (_all, m?: string) => m ?? "",
  );
  const metrics: string[] = [];
  for (const m of s.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const before = s[m.index - 1] ?? " ";
    if (/[0-9.]/.test(before)) continue; // 1e3, 5m
    if (PROMQL_WORDS.has(m[0])) continue;
    if (/^\s*\(/.test(s.slice(m.index + m[0].length))) continue; // a function
    metrics.push(m[0]);
  }
  return { metrics, selectors, grouping };
}

function checkPromql(expr: string, defs: Map<string, MetricDef>, where: string): string[] {
  const { metrics, selectors, grouping } = promqlUses(expr);
  for (const m of metrics) expect(defs.has(m), `${where}: no metric named ${m} in the code`).toBe(true);
  const labels = new Set([...TARGET_LABELS, "le"]);
  for (const m of metrics) for (const l of defs.get(m)?.labels ?? []) labels.add(l);
  for (const [m, used] of selectors) {
    const def = defs.get(m);
    expect(def, `${where}: no metric named ${m} in the code`).toBeDefined();
    for (const l of used) {
      const ok = TARGET_LABELS.has(l) || def!.labels.has(l) || (l === "le" && m.endsWith("_bucket"));
      expect(ok, `${where}: ${m} has no label "${l}"`).toBe(true);
    }
  }
  for (const l of grouping) expect(labels, `${where}: no metric here has label "${l}"`).toContain(l);
  return metrics;
}

// ---------------------------------------------------------------------------------------------

let flags: Record<Proc, Set<string>>;
let defs: Map<string, MetricDef>;
const tools = { promtool: false, compose: false, kubectl: false };

beforeAll(async () => {
  const [ledger, edge, d, promtool, compose, kubectl] = await Promise.all([
    flagsOf("ledger"),
    flagsOf("edge"),
    definedMetrics(),
    tool("promtool"),
    tool("docker-compose"),
    tool("kubectl"),
  ]);
  flags = { ledger, edge };
  defs = d;
  Object.assign(tools, { promtool, compose, kubectl });
  const missing = [
    promtool
      ? ""
      : "promtool (Debian: apt-get install -y prometheus): config, rule and rule-test checks skipped",
    compose ? "" : "docker-compose (Debian: apt-get install -y docker-compose): `config -q` skipped",
    kubectl ? "" : "kubectl: `kubectl kustomize` skipped (structure is still checked)",
  ].filter((m) => m.length > 0);
  for (const m of missing) console.warn(`deploy.test: ${m}`);
});

describe("docker-compose.cluster.yml", () => {
  const FILE = join(REPO, "docker-compose.cluster.yml");

  it("passes docker-compose config -q", async (ctx) => {
    if (!tools.compose) ctx.skip("docker-compose is not installed");
    await runTool("docker-compose", ["-f", FILE, "config", "-q"]);
  });

  it("runs one region of three DCs: a voter, 2 edges and a 6-node Redis Cluster each, Prometheus, Grafana", async () => {
    const doc = obj(await loadYaml(FILE), "compose");
    const services = obj(doc.services, "services");
    const volumes = obj(doc.volumes, "volumes");
    const procs = new Map<string, { p: Proc; flags: Map<string, string>; svc: Obj }>();
    for (const [name, v] of Object.entries(services)) {
      const svc = obj(v, name);
      const cmd = Array.isArray(svc.command) ? svc.command.map((c) => str(c, `${name}.command`)) : [];
      // The image's entry point is the dispenser command: its first argument names the role.
      const p = (Object.keys(MAIN) as Proc[]).find((k) => cmd[0] === k);
      if (p === undefined) continue;
      const env = obj(svc.environment ?? {}, `${name}.environment`) as Record<string, string>;
      procs.set(name, { p, flags: startFlags(p, flags[p], cmd.slice(1), env, name), svc });
    }
    const ledgers = [...procs].filter(([, x]) => x.p === "ledger");
    const edges = [...procs].filter(([, x]) => x.p === "edge");
    const redis = Object.entries(services).filter(
      ([, v]) =>
        obj(v, "svc").image === "redis:7" &&
        /cluster-enabled yes/.test(JSON.stringify(obj(v, "svc").command)),
    );
    expect(ledgers.length).toBe(3);
    expect(edges.length).toBe(6);
    expect(redis.length).toBe(18);
    /** Redis nodes of one DC, by the DC in their service name (redis-dc<d>-<n>). */
    const redisOf = (dc: string): string[] =>
      redis.filter(([r]) => r.startsWith(`redis-dc${dc}-`)).map(([r]) => `${r}:6379`);

    // Ledger: every node in --peers under its service name, its own volume, --bootstrap.
    const dataVolumes = new Set<string>();
    for (const [name, x] of ledgers) {
      const peers = x.flags.get("peers")!.split(",");
      expect(peers.length).toBe(3);
      const id = x.flags.get("id")!;
      const listen = x.flags.get("listen")!;
      expect(peers, `${name}: --peers lacks itself`).toContain(`${id}=${name}:${portOf(listen)}`);
      for (const [other] of ledgers)
        expect(peers.some((pp) => pp.endsWith(`=${other}:${portOf(listen)}`))).toBe(true);
      expect(x.flags.has("bootstrap")).toBe(true);
      expect(x.flags.has("metrics-listen")).toBe(true);
      // Raft on its own port, every member's listed by service name; mutual TLS with its own
      // certificate from the certs volume.
      const peerAddrs = x.flags.get("peer-addresses")!.split(",");
      const peerPort = portOf(x.flags.get("peer-listen")!);
      expect(peerPort).not.toBe(portOf(listen));
      for (const [other, ox] of ledgers)
        expect(peerAddrs).toContain(`${ox.flags.get("id")}=${other}:${peerPort}`);
      expect(x.flags.get("tls-ca")).toBe("/certs/ca.pem");
      expect(x.flags.get("tls-cert")).toBe(`/certs/${name}.pem`);
      expect(x.flags.get("tls-key")).toBe(`/certs/${name}-key.pem`);
      expect(x.svc.volumes).toContain(`tls-${name}:/certs:ro`);
      const vols = arr(x.svc.volumes, `${name}.volumes`).map((vv) => str(vv, name));
      const data = vols.find((vv) => vv.endsWith(`:${x.flags.get("data-dir")}`));
      expect(data, `${name}: no volume at --data-dir`).toBeDefined();
      const volName = data!.split(":")[0]!;
      expect(volumes).toHaveProperty(volName);
      dataVolumes.add(volName);
    }
    expect(dataVolumes.size).toBe(3);

    // Edges: two per DC, every ledger node (its own DC's voter first), its DC's six Redis nodes,
    // RESP and gRPC published on loopback only.
    const published: string[] = [];
    const perDc = new Map<string, number>();
    for (const [name, x] of edges) {
      const dc = x.flags.get("dc")!;
      perDc.set(dc, (perDc.get(dc) ?? 0) + 1);
      const ledgerAddrs = x.flags.get("ledger")!.split(",");
      for (const [l, lx] of ledgers) expect(ledgerAddrs).toContain(`${l}:${portOf(lx.flags.get("listen")!)}`);
      expect(ledgerAddrs[0], `${name}: its own DC's voter first`).toBe(`ledger-${Number(dc) + 1}:7100`);
      const redisAddrs = x.flags.get("redis")!.split(",");
      expect(redisAddrs.length).toBe(6);
      expect(redisAddrs.sort()).toEqual(redisOf(dc).sort());
      const ports = arr(x.svc.ports, `${name}.ports`).map((pp) => str(pp, name));
      // TLS on its own ports and to the ledger, each with its own certificate; users required;
      // no plaintext RESP.
      expect(x.flags.get("resp-listen")).toBe("off");
      expect(x.flags.get("tls-cert")).toBe(`/certs/${name}.pem`);
      expect(x.flags.get("ledger-tls-cert")).toBe(`/certs/${name}.pem`);
      expect(x.flags.get("ledger-tls-ca")).toBe("/certs/ca.pem");
      expect(x.flags.get("users")).toBe("/users/users");
      expect(x.svc.volumes).toContain(`tls-${name}:/certs:ro`);
      expect(x.svc.volumes).toContain("users:/users:ro");
      for (const inner of ["resp-tls-listen", "grpc-listen", "metrics-listen"]) {
        const port = portOf(x.flags.get(inner)!);
        expect(
          ports.some((pp) => pp.endsWith(`:${port}`)),
          `${name}: ${inner} port not published`,
        ).toBe(true);
      }
      published.push(...ports);
    }
    for (const [, svc] of Object.entries(services)) {
      for (const pp of (obj(svc, "svc").ports as unknown[] | undefined) ?? []) {
        expect(str(pp, "port"), "published ports bind 127.0.0.1 only").toMatch(/^127\.0\.0\.1:\d+:\d+$/);
      }
    }
    expect([...perDc.entries()].sort()).toEqual([
      ["0", 2],
      ["1", 2],
      ["2", 2],
    ]);
    const hostPorts = published.map((pp) => Number(pp.split(":")[1]));
    for (const port of [6390, 6391, 50051, 50052]) expect(hostPorts).toContain(port);
    expect(new Set(hostPorts).size).toBe(hostPorts.length);

    // A one-shot cluster creation per DC covers its six Redis nodes, one replica each.
    for (const dc of ["0", "1", "2"]) {
      const create = obj(services[`redis-dc${dc}-create`], `redis-dc${dc}-create`);
      const script = JSON.stringify(create.command);
      expect(script).toMatch(/--cluster create/);
      expect(script).toMatch(/--cluster-replicas 1/);
      expect(script).toMatch(/redis-dc\$\$DC-/);
      expect(at(create, "environment.DC")).toBe(dc);
      expect(Object.keys(obj(create.depends_on, "depends_on")).sort()).toEqual(
        redisOf(dc)
          .map((r) => r.split(":")[0]!)
          .sort(),
      );
      expect(create.restart).toBe("no");
    }

    // Prometheus scrapes every process at its metrics port, with the alert rules mounted.
    const prom = obj(services.prometheus, "prometheus");
    const mounts = arr(prom.volumes, "prometheus.volumes").map((vv) => str(vv, "volume"));
    for (const m of mounts.filter((mm) => mm.startsWith("./")))
      expect(existsSync(join(REPO, m.split(":")[0]!))).toBe(true);
    const config = obj(await loadYaml(join(DEPLOY, "prometheus", "prometheus.yml")), "prometheus.yml");
    const inContainer = (f: string): string => `/etc/prometheus/${f}`;
    for (const f of arr(config.rule_files, "rule_files")) {
      expect(mounts.some((mm) => mm.split(":")[1] === inContainer(str(f, "rule file")))).toBe(true);
    }
    const targets = new Map<string, string[]>();
    for (const sc of arr(config.scrape_configs, "scrape_configs")) {
      const job = str(obj(sc, "scrape").job_name, "job_name");
      const t = arr(obj(sc, job).static_configs, job).flatMap((c) =>
        arr(obj(c, job).targets, job).map((tt) => str(tt, job)),
      );
      targets.set(job, t);
    }
    expect(targets.get("dispenser-ledger")?.sort()).toEqual(
      ledgers.map(([n, x]) => `${n}:${portOf(x.flags.get("metrics-listen")!)}`).sort(),
    );
    expect(targets.get("dispenser-edge")?.sort()).toEqual(
      edges.map(([n, x]) => `${n}:${portOf(x.flags.get("metrics-listen")!)}`).sort(),
    );

    // Grafana reads the provisioning and the generated dashboards from deploy/grafana; no
    // anonymous access, and the generated admin password from a file.
    const grafana = obj(services.grafana, "grafana");
    expect(at(grafana, "environment.GF_AUTH_ANONYMOUS_ENABLED")).toBe("false");
    expect(at(grafana, "environment")).not.toHaveProperty("GF_SECURITY_ADMIN_PASSWORD");
    expect(str(at(grafana, "environment.GF_SECURITY_ADMIN_PASSWORD__FILE"), "password file")).toMatch(
      /^\/run\/secrets\/grafana\//,
    );
    const gm = arr(grafana.volumes, "grafana.volumes").map((vv) => str(vv, "volume"));
    for (const m of gm.filter((mm) => mm.startsWith("./")))
      expect(existsSync(join(REPO, m.split(":")[0]!))).toBe(true);
    const dashMount = gm.find((mm) => mm.startsWith("./deploy/grafana/dashboards:"))!.split(":")[1];
    const provider = obj(
      await loadYaml(join(DEPLOY, "grafana", "provisioning", "dashboards", "dispenser.yml")),
      "provider",
    );
    expect(at(arr(provider.providers, "providers")[0], "options.path")).toBe(dashMount);
  });
});

describe("the compose setup's certs job", () => {
  it("gives each process only its own key, keeps the CA key to itself, and makes the users and Grafana's password", async () => {
    const doc = obj(await loadYaml(join(REPO, "docker-compose.cluster.yml")), "compose");
    const services = obj(doc.services, "services");
    const certs = obj(services.certs, "certs");
    expect(at(certs, "build.target")).toBe("certs");
    // Where each of the job's volumes is mounted in the job, and which other services mount it.
    const jobMounts = new Map(
      arr(certs.volumes, "certs.volumes").map((v) => str(v, "volume").split(":") as [string, string]),
    );
    const mountsOf = (name: string): string[] =>
      ((obj(services[name], name).volumes as unknown[] | undefined) ?? []).map((v) => str(v, "volume"));
    const users = new Set<string>(["certs"]);
    for (const name of Object.keys(services))
      if (name !== "certs" && mountsOf(name).some((m) => m.startsWith("ca:"))) users.add(name);
    expect([...users], "only the certs job mounts the CA's volume").toEqual(["certs"]);

    const tmp = mkdtempSync(join(tmpdir(), "dispenser-certs-job-"));
    try {
      // The job's script as its shell runs it ("$$" is compose's "$"), its volumes directories of ours.
      const local = (path: string): string => join(tmp, path.replace(/^\//, "").replace(/\//g, "_"));
      let script = str(arr(certs.command, "certs.command")[0], "script").replace(/\$\$/g, "$");
      const paths = [...jobMounts.values()].sort((a, b) => b.length - a.length);
      for (const p of paths) mkdirSync(local(p), { recursive: true });
      script = script.replace(/\/(ca|users|grafana|tls)(\/[A-Za-z0-9$._-]*)?/g, (m: string) => {
        const root = paths.find((p) => m === p || m.startsWith(`${p}/`));
        if (root !== undefined) return local(root) + m.slice(root.length);
        // /tls/$n/: the service's own volume, mounted at /tls/<service>.
        return join(tmp, "tls") + m.slice("/tls".length);
      });
      for (const p of paths.filter((x) => x.startsWith("/tls/")))
        mkdirSync(join(tmp, "tls", p.slice("/tls/".length)), { recursive: true });
      if (process.getuid?.() !== 0) script = script.replace(/^\s*chown .*$/m, "true");
      const env = { ...process.env, PATH: `${join(DEPLOY, "certs")}:${process.env.PATH ?? ""}` };
      await exec("sh", ["-c", script], { env });
      const ca = await readFile(join(local("/ca"), "ca.pem"), "utf8");
      await exec("sh", ["-c", script], { env }); // again: what exists is kept
      expect(await readFile(join(local("/ca"), "ca.pem"), "utf8")).toBe(ca);

      for (const [name, v] of Object.entries(services)) {
        if (name === "certs") continue;
        const mounts = mountsOf(name);
        const own = mounts.find((m) => m.endsWith(":/certs:ro"));
        const cmd = ((obj(v, name).command as unknown[] | undefined) ?? []).map((c) => String(c));
        const files = cmd.map((a) => /^--[a-z-]+=\/certs\/(.+)$/.exec(a)?.[1]).filter((f) => f !== undefined);
        if (files.length === 0) continue;
        // Its own volume, filled by the job, holding what its flags name and no other key.
        expect(own, `${name}: no certificate volume at /certs`).toBe(`tls-${name}:/certs:ro`);
        expect(jobMounts.get(`tls-${name}`)).toBe(`/tls/${name}`);
        const dir = join(tmp, "tls", name);
        for (const f of files)
          expect(existsSync(join(dir, f)), `${name}: ${f} is not made by the job`).toBe(true);
        expect((await readdir(dir)).filter((f) => f.endsWith("-key.pem"))).toEqual([`${name}-key.pem`]);
        if (cmd.includes("--users=/users/users")) expect(mounts).toContain("users:/users:ro");
      }
      const edgeUsers = Users.load(join(local("/users"), "users"));
      for (const [user, role] of [
        ["app", "issue"],
        ["ops", "admin"],
      ] as const) {
        const token = (await readFile(join(local("/ca"), `${user}.token`), "utf8")).trim();
        expect(edgeUsers.checkToken(token)?.role).toBe(role);
      }
      expect(
        (await readFile(join(local("/grafana"), "admin-password"), "utf8")).trim().length,
      ).toBeGreaterThanOrEqual(20);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }, 60_000);
});

describe("Prometheus", () => {
  const DIR = join(DEPLOY, "prometheus");

  it("promtool checks the config, the rules, and runs the rule unit tests", async (ctx) => {
    if (!tools.promtool) ctx.skip("promtool is not installed");
    await runTool("promtool", ["check", "config", join(DIR, "prometheus.yml")]);
    await runTool("promtool", ["check", "rules", join(DIR, "alerts.yml")]);
    const out = await runTool("promtool", ["test", "rules", join(DIR, "rules.test.yml")]);
    expect(out).toMatch(/SUCCESS/);
  });

  it("has a firing test case and a runbook entry for every alert", async () => {
    const rules = obj(await loadYaml(join(DIR, "alerts.yml")), "alerts.yml");
    const alerts = arr(rules.groups, "groups").flatMap((g) =>
      arr(obj(g, "group").rules, "rules").map((r) => obj(r, "rule")),
    );
    const names = alerts.map((a) => str(a.alert, "alert"));
    expect(new Set(names).size).toBe(names.length);
    const wanted = [
      "DispenserLedgerNoLeader",
      "DispenserLedgerLeaderChangesFrequent",
      "DispenserLedgerFsyncSlow",
      "DispenserLedgerStorageCorrupt",
      "DispenserLedgerFollowerLag",
      "DispenserEdgeSegmentRunwayLow",
      "DispenserEdgeLeaseErrors",
      "DispenserEdgeRejectedRequests",
      "DispenserEdgeIssueWaitSlow",
      "DispenserEdgeWasteHigh",
    ];
    for (const w of wanted) expect(names).toContain(w);

    const tests = obj(await loadYaml(join(DIR, "rules.test.yml")), "rules.test.yml");
    const cases = arr(tests.tests, "tests").flatMap((t) =>
      arr(obj(t, "test").alert_rule_test ?? [], "alert_rule_test"),
    );
    const readme = await readFile(join(DEPLOY, "README.md"), "utf8");
    const anchors = new Set(
      [...readme.matchAll(/^#+ (.+)$/gm)].map((m) =>
        m[1]!
          .trim()
          .toLowerCase()
          .replace(/[^a-z0-9 -]/g, "")
          .replace(/ /g, "-"),
      ),
    );
    for (const a of alerts) {
      const name = str(a.alert, "alert");
      const fires = cases.some(
        (c) => obj(c, "case").alertname === name && arr(obj(c, "case").exp_alerts, "exp_alerts").length > 0,
      );
      expect(fires, `${name}: no test case where it fires`).toBe(true);
      const severity = at(a, "labels.severity");
      expect(["critical", "warning"]).toContain(severity);
      const runbook = str(at(a, "annotations.runbook"), `${name} runbook`);
      expect(runbook).toBe(`deploy/README.md#${name.toLowerCase()}`);
      expect(anchors, `deploy/README.md has no section "${name}"`).toContain(name.toLowerCase());
    }
  });

  it("the Kubernetes scrape config keeps the job names and rules of the compose one", async () => {
    const a = obj(await loadYaml(join(DIR, "prometheus.yml")), "prometheus.yml");
    const b = obj(await loadYaml(join(DIR, "prometheus.k8s.yml")), "prometheus.k8s.yml");
    const jobs = (c: Obj): string[] =>
      arr(c.scrape_configs, "scrape_configs")
        .map((s) => str(obj(s, "scrape").job_name, "job_name"))
        .filter((j) => j.startsWith("dispenser-"));
    expect(jobs(b).sort()).toEqual(jobs(a).sort());
    expect(b.rule_files).toEqual(a.rule_files);
  });

  it("names only metrics and labels the processes export", async () => {
    const rules = obj(await loadYaml(join(DIR, "alerts.yml")), "alerts.yml");
    let used = 0;
    for (const g of arr(rules.groups, "groups")) {
      for (const r of arr(obj(g, "group").rules, "rules")) {
        const rule = obj(r, "rule");
        used += checkPromql(str(rule.expr, "expr"), defs, `alert ${str(rule.alert, "alert")}`).length;
      }
    }
    const tests = obj(await loadYaml(join(DIR, "rules.test.yml")), "rules.test.yml");
    for (const t of arr(tests.tests, "tests")) {
      for (const s of arr(obj(t, "test").input_series, "input_series")) {
        used += checkPromql(str(obj(s, "series").series, "series"), defs, "rules.test.yml input").length;
      }
    }
    expect(used).toBeGreaterThan(20);
  });
});

describe("Grafana dashboards", () => {
  const DIR = join(DEPLOY, "grafana", "dashboards");
  const files = async (): Promise<string[]> => (await readdir(DIR)).filter((f) => f.endsWith(".json")).sort();

  it("are up to date with deploy/grafana/dashboards.ts", async () => {
    const want = await render(DIR);
    expect(await files(), "run: node --import tsx deploy/grafana/build.ts").toEqual([...want.keys()].sort());
    for (const [name, text] of want) {
      expect(
        await readFile(join(DIR, name), "utf8"),
        `${name} is stale: run node --import tsx deploy/grafana/build.ts`,
      ).toBe(text);
    }
  });

  it("are well-formed and query only metrics and labels the processes export", async () => {
    const exprs: string[] = [];
    for (const f of await files()) {
      const d = obj(JSON.parse(await readFile(join(DIR, f), "utf8")), f);
      expect(d.uid).toBe(f.replace(/\.json$/, ""));
      const panels = arr(d.panels, "panels").map((p) => obj(p, "panel"));
      const ids = panels.map((p) => p.id);
      expect(new Set(ids).size, `${f}: panel ids repeat`).toBe(ids.length);
      const taken = new Set<string>();
      for (const p of panels) {
        const g = obj(p.gridPos, "gridPos") as { x: number; y: number; w: number; h: number };
        expect(g.x + g.w, `${f}: "${String(p.title)}" is wider than the grid`).toBeLessThanOrEqual(24);
        for (let x = g.x; x < g.x + g.w; x++) {
          for (let y = g.y; y < g.y + g.h; y++) {
            expect(taken.has(`${x},${y}`), `${f}: "${String(p.title)}" overlaps another panel`).toBe(false);
            taken.add(`${x},${y}`);
          }
        }
        if (p.type === "row") continue;
        expect(
          typeof p.description === "string" && p.description.length > 0,
          `${f}: "${String(p.title)}" has no description`,
        ).toBe(true);
        const targets = arr(p.targets, "targets").map((t) => obj(t, "target"));
        expect(targets.length).toBeGreaterThan(0);
        for (const t of targets) {
          expect(t.datasource).toEqual({ type: "prometheus", uid: "${datasource}" });
          const expr = str(t.expr, "expr");
          checkPromql(expr, defs, `${f} "${String(p.title)}"`);
          exprs.push(expr);
        }
      }
      const vars = arr(at(d, "templating.list"), "templating").map((v) => obj(v, "variable"));
      expect(vars[0]).toMatchObject({ name: "datasource", type: "datasource", query: "prometheus" });
      for (const v of vars.filter((vv) => vv.type === "query")) {
        checkPromql(str(at(v, "query.query"), "query"), defs, `${f} variable ${String(v.name)}`);
      }
    }
    // The ledger and edge metrics each appear on a dashboard.
    const all = exprs.join("\n");
    for (const name of defs.keys()) {
      if (!/^dispenser_(ledger|edge)_/.test(name) || /_(sum|count|bucket)$/.test(name)) continue;
      if (/^dispenser_edge_(process|nodejs)_/.test(name)) continue;
      const histogram = defs.has(`${name}_bucket`);
      expect(all.includes(histogram ? `${name}_bucket` : name), `${name} is on no dashboard`).toBe(true);
    }
    // PromQL syntax: every query, with Grafana's variables filled in, as a recording rule.
    if (!tools.promtool) return;
    const dir = mkdtempSync(join(tmpdir(), "dispenser-dash-"));
    try {
      const rules = exprs.map((e, i) => ({
        record: `dashboard:query:${i}`,
        expr: e.replace(/\$__rate_interval/g, "5m").replace(/\$\{?\w+\}?/g, ".+"),
      }));
      writeFileSync(join(dir, "rules.json"), JSON.stringify({ groups: [{ name: "dashboards", rules }] }));
      await runTool("promtool", ["check", "rules", join(dir, "rules.json")]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("Kubernetes manifests", () => {
  const DIR = join(DEPLOY, "k8s");
  const API: Record<string, string> = {
    Namespace: "v1",
    ConfigMap: "v1",
    Service: "v1",
    StatefulSet: "apps/v1",
    Deployment: "apps/v1",
    PodDisruptionBudget: "policy/v1",
    Job: "batch/v1",
    NetworkPolicy: "networking.k8s.io/v1",
  };
  let docs: Obj[];
  const named = (kind: string, name: string): Obj => {
    const d = docs.find((x) => x.kind === kind && at(x, "metadata.name") === name);
    if (d === undefined) throw new Error(`no ${kind} ${name}`);
    return d;
  };

  beforeAll(async () => {
    const kust = obj(await loadYaml(join(DIR, "kustomization.yaml")), "kustomization");
    const resources = arr(kust.resources, "resources").map((r) => str(r, "resource"));
    const onDisk = (await readdir(DIR)).filter((f) => /\.ya?ml$/.test(f) && f !== "kustomization.yaml");
    expect(onDisk.sort(), "every manifest is listed in kustomization.yaml").toEqual([...resources].sort());
    docs = [];
    for (const r of resources) {
      for (const d of yaml.loadAll(await readFile(join(DIR, r), "utf8")))
        if (d !== null) docs.push(obj(d, r));
    }
  });

  it("renders with kubectl kustomize", async (ctx) => {
    if (!tools.kubectl) ctx.skip("kubectl is not installed");
    const out = await runTool("kubectl", ["kustomize", DIR]);
    expect(out).toMatch(/kind: StatefulSet/);
  });

  it("every object has a known kind, its apiVersion and a valid name", () => {
    const kinds = new Set(docs.map((d) => str(d.kind, "kind")));
    for (const k of ["ConfigMap", "Service", "StatefulSet", "Deployment", "PodDisruptionBudget"])
      expect(kinds).toContain(k);
    for (const d of docs) {
      const kind = str(d.kind, "kind");
      expect(API, `unexpected kind ${kind}`).toHaveProperty(kind);
      expect(d.apiVersion, kind).toBe(API[kind]);
      expect(str(at(d, "metadata.name"), `${kind} name`)).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    }
  });

  it("workloads: selectors match pod labels, probes hit the metrics port, flags exist", () => {
    const configMaps = new Map(
      docs.filter((d) => d.kind === "ConfigMap").map((d) => [at(d, "metadata.name"), obj(d.data, "data")]),
    );
    for (const w of docs.filter((d) => d.kind === "StatefulSet" || d.kind === "Deployment")) {
      const wname = `${str(w.kind, "kind")} ${str(at(w, "metadata.name"), "name")}`;
      const podLabels = obj(at(w, "spec.template.metadata.labels"), `${wname} pod labels`);
      expect(podLabels).toMatchObject(obj(at(w, "spec.selector.matchLabels"), `${wname} selector`));
      const pod = obj(at(w, "spec.template.spec"), wname);
      const podVolumes = new Set(arr(pod.volumes ?? [], "volumes").map((v) => at(v, "name")));
      for (const t of ((at(w, "spec") as Obj).volumeClaimTemplates as unknown[] | undefined) ?? [])
        podVolumes.add(at(t, "metadata.name"));
      for (const c of arr(pod.containers, `${wname} containers`).map((cc) => obj(cc, "container"))) {
        const where = `${wname}/${str(c.name, "container name")}`;
        // The per-DC Redis Clusters run the Redis image; their own test is below.
        if (str(c.image, where).startsWith("redis:")) continue;
        expect(str(c.image, where)).toMatch(/^dispenser/);
        // The image's entry point is the dispenser command; a shell wrapper must exec it.
        const command = (c.command as string[] | undefined) ?? [];
        const args = arr(c.args, `${where} args`).map((a) => str(a, where));
        let p: Proc | undefined;
        let flagArgs: string[];
        if (command.length > 0) {
          expect(command.slice(0, 2)).toEqual(["sh", "-c"]);
          const script = command[2]!;
          const entry = (k: Proc): string => `exec node ${IMAGE_BIN} ${k} `;
          p = (Object.keys(MAIN) as Proc[]).find((k) => script.includes(entry(k)));
          expect(p, `${where}: the script does not exec the dispenser command`).toBeDefined();
          expect(script).toMatch(/"\$@"$/);
          const tail = script.slice(script.indexOf(entry(p!)) + entry(p!).length);
          const inline = [...` ${tail}`.matchAll(/ --([a-z][a-z-]*)/g)].map((m) => `--${m[1]}=x`);
          flagArgs = [...inline, ...args];
        } else {
          p = (Object.keys(MAIN) as Proc[]).find((k) => args[0] === k);
          expect(p, `${where}: args[0] names no role`).toBeDefined();
          flagArgs = args.slice(1);
        }
        const env: Record<string, string> = {};
        for (const e of arr(c.env ?? [], "env")) env[str(at(e, "name"), "env name")] = "from-field";
        for (const ef of arr(c.envFrom ?? [], "envFrom")) {
          const data = configMaps.get(at(ef, "configMapRef.name"));
          expect(data, `${where}: envFrom names a missing ConfigMap`).toBeDefined();
          Object.assign(env, data);
        }
        const f = startFlags(p!, flags[p!], flagArgs, env, where);
        // Ports: named, and the metrics port is where the process serves /metrics.
        const ports = new Map(arr(c.ports, "ports").map((pp) => [at(pp, "name"), at(pp, "containerPort")]));
        expect(ports.get("metrics")).toBe(portOf(f.get("metrics-listen")!));
        for (const probe of ["livenessProbe", "readinessProbe"]) {
          expect(at(c, `${probe}.httpGet.path`), `${where} ${probe}`).toBe("/metrics");
          expect(at(c, `${probe}.httpGet.port`), `${where} ${probe}`).toBe("metrics");
        }
        for (const m of arr(c.volumeMounts ?? [], "volumeMounts"))
          expect(podVolumes).toContain(at(m, "name"));
        if (p === "ledger") {
          expect(ports.get("grpc")).toBe(portOf(f.get("listen")!));
          expect(ports.get("peer")).toBe(portOf(f.get("peer-listen")!));
          const mount = arr(c.volumeMounts, "mounts").find((m) => at(m, "mountPath") === f.get("data-dir"));
          expect(mount, `${where}: --data-dir is not a mounted volume`).toBeDefined();
        }
        if (p === "edge") {
          expect(f.get("resp-listen")).toBe("off");
          for (const flag of ["resp-tls-listen", "grpc-listen"])
            expect([...ports.values()]).toContain(portOf(f.get(flag)!));
        }
      }
    }
  });

  it("the ledger: a StatefulSet of 3 with volumes, a headless Service, peers by pod name, a PDB", () => {
    const sts = named("StatefulSet", "ledger");
    expect(at(sts, "spec.replicas")).toBe(3);
    expect(at(sts, "spec.podManagementPolicy")).toBe("Parallel");
    const claims = arr(at(sts, "spec.volumeClaimTemplates"), "volumeClaimTemplates");
    expect(claims.length).toBe(1);
    expect(at(claims[0], "spec.accessModes")).toEqual(["ReadWriteOnce"]);
    const svcName = str(at(sts, "spec.serviceName"), "serviceName");
    const svc = named("Service", svcName);
    expect(at(svc, "spec.clusterIP")).toBe("None");
    expect(at(svc, "spec.publishNotReadyAddresses")).toBe(true);
    const podLabels = obj(at(sts, "spec.template.metadata.labels"), "labels");
    expect(podLabels).toMatchObject(obj(at(svc, "spec.selector"), "selector"));

    const grpcPort = (arr(at(svc, "spec.ports"), "ports").find((p) => at(p, "name") === "grpc") as Obj).port;
    const cm = obj(named("ConfigMap", "dispenser-ledger").data, "data");
    const peers = str(cm.DISPENSER_LEDGER_PEERS, "peers").split(",");
    const stsName = str(at(sts, "metadata.name"), "name");
    expect(peers).toEqual([0, 1, 2].map((i) => `${i + 1}=${stsName}-${i}.${svcName}:${String(grpcPort)}`));
    const edgeLedger = str(
      obj(named("ConfigMap", "dispenser-edge").data, "data").DISPENSER_EDGE_LEDGER,
      "ledger",
    );
    expect(edgeLedger.split(",")).toEqual(peers.map((p) => p.slice(p.indexOf("=") + 1)));
    // Node id = ordinal + 1, from the pod name.
    const container = obj(arr(at(sts, "spec.template.spec.containers"), "containers")[0], "container");
    const script = str(arr(container.command, "command")[2], "script");
    expect(script).toContain("n=$$((${POD_NAME##*-} + 1));");
    expect(script).toContain('--id "$$n"');
    // Raft's own port, each member's by pod name.
    const peerPort = (arr(at(svc, "spec.ports"), "ports").find((p) => at(p, "name") === "peer") as Obj).port;
    expect(str(cm.DISPENSER_LEDGER_PEER_ADDRESSES, "peer addresses").split(",")).toEqual(
      [0, 1, 2].map((i) => `${i + 1}=${stsName}-${i}.${svcName}:${String(peerPort)}`),
    );

    const pdbs = docs.filter((d) => d.kind === "PodDisruptionBudget");
    const pdb = pdbs.find((d) => {
      const sel = obj(at(d, "spec.selector.matchLabels"), "pdb selector");
      return Object.entries(sel).every(([k, v]) => podLabels[k] === v);
    });
    expect(pdb, "no PodDisruptionBudget selects the ledger pods").toBeDefined();
    expect(at(pdb, "spec.maxUnavailable")).toBe(1);
  });

  it("edges: one Deployment per DC, pinned to its zone, with its DC from its own ConfigMap", () => {
    const zones = new Set<string>();
    for (const dc of [0, 1, 2]) {
      const dep = named("Deployment", `edge-dc${dc}`);
      const terms = arr(
        at(
          dep,
          "spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms",
        ),
        "nodeSelectorTerms",
      );
      const expr = obj(arr(at(terms[0], "matchExpressions"), "matchExpressions")[0], "matchExpression");
      expect(expr.key).toBe("topology.kubernetes.io/zone");
      zones.add(str(arr(expr.values, "values")[0], "zone"));
      const c = obj(arr(at(dep, "spec.template.spec.containers"), "containers")[0], "container");
      const maps = arr(c.envFrom, "envFrom").map((e) => at(e, "configMapRef.name"));
      expect(maps).toContain(`dispenser-edge-dc${dc}`);
      expect(at(named("ConfigMap", `dispenser-edge-dc${dc}`), "data.DISPENSER_EDGE_DC")).toBe(String(dc));
      expect(at(dep, "spec.template.metadata.labels")).toMatchObject({ "dispenser.io/dc": String(dc) });
      expect(at(named("Service", `edge-dc${dc}`), "spec.selector")).toMatchObject({
        "dispenser.io/dc": String(dc),
      });
    }
    expect(zones.size).toBe(3);
  });

  it("Redis: a 6-node cluster per DC in its zone, formed by a Job, listed in its edges' ConfigMap", () => {
    for (const dc of [0, 1, 2]) {
      const sts = named("StatefulSet", `redis-dc${dc}`);
      expect(at(sts, "spec.replicas")).toBe(6);
      const svcName = str(at(sts, "spec.serviceName"), "serviceName");
      expect(at(named("Service", svcName), "spec.clusterIP")).toBe("None");
      const zone = at(
        arr(
          at(
            sts,
            "spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms",
          ),
          "terms",
        )[0],
        "matchExpressions",
      );
      const edgeZone = at(
        arr(
          at(
            named("Deployment", `edge-dc${dc}`),
            "spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms",
          ),
          "terms",
        )[0],
        "matchExpressions",
      );
      expect(zone, `redis-dc${dc} and edge-dc${dc} share a zone`).toEqual(edgeZone);
      const c = obj(arr(at(sts, "spec.template.spec.containers"), "containers")[0], "container");
      expect(JSON.stringify(c.command)).toMatch(/--cluster-enabled yes/);
      const job = named("Job", `redis-dc${dc}-create`);
      const script = JSON.stringify(at(job, "spec.template.spec.containers"));
      expect(script).toMatch(/--cluster create/);
      expect(script).toMatch(/--cluster-replicas 1/);
      const nodes = [0, 1, 2, 3, 4, 5].map((n) => `redis-dc${dc}-${n}.${svcName}:6379`);
      expect(
        str(at(named("ConfigMap", `dispenser-edge-dc${dc}`), "data.DISPENSER_EDGE_REDIS"), "redis").split(
          ",",
        ),
      ).toEqual(nodes);
    }
  });

  it("NetworkPolicies: all ingress closed, the peer port open to ledger pods only, the client port to edges and admins", () => {
    const policies = docs.filter((d) => d.kind === "NetworkPolicy");
    const deny = policies.find((p) => at(p, "metadata.name") === "default-deny-ingress")!;
    expect(at(deny, "spec.podSelector")).toEqual({});
    expect(at(deny, "spec.policyTypes")).toEqual(["Ingress"]);
    expect(at(deny, "spec")).not.toHaveProperty("ingress");
    const workloads = docs.filter((d) => d.kind === "StatefulSet" || d.kind === "Deployment");
    const ledgerLabels = obj(at(named("StatefulSet", "ledger"), "spec.template.metadata.labels"), "labels");
    /** Who may reach `port` of the ledger pods: the pod selectors of every rule that opens it. */
    const ledgerRules = (port: string): Obj[] =>
      policies
        .filter((p) => {
          const sel = obj(at(p, "spec.podSelector"), "podSelector");
          const match = obj(sel.matchLabels ?? {}, "matchLabels");
          return (
            Object.keys(match).length > 0 && Object.entries(match).every(([k, v]) => ledgerLabels[k] === v)
          );
        })
        .flatMap((p) => arr(at(p, "spec.ingress"), "ingress").map((r) => obj(r, "rule")))
        .filter((r) => arr(r.ports, "ports").some((pp) => at(pp, "port") === port));
    const peer = ledgerRules("peer");
    expect(peer).toHaveLength(1);
    expect(arr(peer[0]!.from, "from")).toEqual([
      { podSelector: { matchLabels: { "app.kubernetes.io/name": "dispenser-ledger" } } },
    ]);
    const client = ledgerRules("grpc");
    expect(client).toHaveLength(1);
    expect(arr(client[0]!.from, "from").map((f) => at(f, "podSelector.matchLabels"))).toEqual([
      { "app.kubernetes.io/name": "dispenser-edge" },
      { "dispenser.io/role": "admin" },
    ]);
    // Every policy selects some workload, and every port it opens is a named port of those pods or
    // a number they expose.
    for (const p of policies.filter((x) => x !== deny)) {
      const name = str(at(p, "metadata.name"), "name");
      const sel = obj(at(p, "spec.podSelector"), `${name} podSelector`);
      const selected = workloads.filter((w) => {
        const labels = obj(at(w, "spec.template.metadata.labels"), "labels");
        const match = Object.entries(obj(sel.matchLabels ?? {}, "m")).every(([k, v]) => labels[k] === v);
        const exprs = arr(sel.matchExpressions ?? [], "e").every((e) =>
          arr(at(e, "values"), "values").includes(labels[str(at(e, "key"), "key")]),
        );
        return match && exprs;
      });
      expect(selected.length, `NetworkPolicy ${name} selects no workload`).toBeGreaterThan(0);
      for (const w of selected) {
        const cports = (at(w, "spec.template.spec.containers") as Obj[]).flatMap((c) =>
          arr(c.ports, "ports").map((pp) => obj(pp, "port")),
        );
        for (const r of arr(at(p, "spec.ingress"), "ingress"))
          for (const pp of arr(at(r, "ports"), "ports")) {
            const port = at(pp, "port");
            const ok = cports.some((cp) => cp.name === port || cp.containerPort === port);
            expect(
              ok,
              `NetworkPolicy ${name}: ${String(port)} is no port of ${String(at(w, "metadata.name"))}`,
            ).toBe(true);
          }
      }
    }
  });

  it("make-secrets.sh makes every Secret the pods mount, with the files their flags name", async () => {
    const tmp = mkdtempSync(join(tmpdir(), "dispenser-k8s-secrets-"));
    try {
      const cluster = str(
        at(named("ConfigMap", "dispenser-ledger"), "data.DISPENSER_LEDGER_CLUSTER_ID"),
        "id",
      );
      const { stdout } = await exec("bash", [join(DIR, "make-secrets.sh"), join(tmp, "ca"), cluster]);
      const secrets = new Map<string, Map<string, Buffer>>();
      for (const d of yaml.loadAll(stdout).filter((x) => x !== null)) {
        const s = obj(d, "secret");
        expect(s.kind).toBe("Secret");
        const data = obj(s.data, "data");
        secrets.set(
          str(at(s, "metadata.name"), "name"),
          new Map(Object.entries(data).map(([k, v]) => [k, Buffer.from(str(v, k), "base64")])),
        );
      }
      for (const w of docs.filter((d) => d.kind === "StatefulSet" || d.kind === "Deployment")) {
        const pod = obj(at(w, "spec.template.spec"), "pod");
        const byVolume = new Map<string, string>();
        for (const v of arr(pod.volumes ?? [], "volumes")) {
          const secret = (obj(v, "volume").secret as Obj | undefined)?.secretName;
          if (secret === undefined) continue;
          const secretName = str(secret, "secretName");
          expect(
            [...secrets.keys()],
            `${str(at(w, "metadata.name"), "name")}: no Secret ${secretName}`,
          ).toContain(secretName);
          byVolume.set(str(at(v, "name"), "name"), secretName);
          // Its files belong to root and the pod's fsGroup: a process that is not root reads them
          // through that group, so the mode must let the group read and the user be in it.
          const mode = Number((obj(v, "volume").secret as Obj).defaultMode ?? 0o644);
          const sc = obj(at(w, "spec.template.spec.securityContext") ?? {}, "securityContext");
          const where = `${str(at(w, "metadata.name"), "name")}: Secret ${secretName}`;
          if (sc.runAsUser !== 0) {
            expect(mode & 0o040, `${where} is not group-readable`).toBe(0o040);
            expect(sc.fsGroup, `${where}: no fsGroup`).toBe(sc.runAsGroup ?? sc.runAsUser);
          }
          expect(mode & 0o007, `${where} is readable by others`).toBe(0);
        }
        for (const c of arr(pod.containers, "containers").map((cc) => obj(cc, "container"))) {
          const mounts = arr(c.volumeMounts ?? [], "mounts")
            .map((m) => obj(m, "mount"))
            .filter((m) => byVolume.has(str(m.name, "name")));
          const text = [
            ...((c.command as string[] | undefined) ?? []),
            ...((c.args as string[] | undefined) ?? []),
          ]
            .join(" ")
            .replace(/\$\$n/g, "2"); // node 2's files stand for every node's
          for (const m of mounts) {
            const path = str(m.mountPath, "mountPath");
            const files = [...text.matchAll(new RegExp(`${path}/([A-Za-z0-9._-]+)`, "g"))].map((x) => x[1]!);
            expect(files.length, `${path} is mounted but no flag names a file in it`).toBeGreaterThan(0);
            const keys = secrets.get(byVolume.get(str(m.name, "name"))!)!;
            for (const f of files) expect([...keys.keys()], `${path}/${f}`).toContain(f);
          }
        }
      }
      // The certificates name the identities the processes check.
      const identity = (pem: Buffer): string => new X509Certificate(pem).subjectAltName ?? "";
      const ledgerTls = secrets.get("dispenser-ledger-tls")!;
      for (const n of [1, 2, 3])
        expect(identity(ledgerTls.get(`ledger-${n}.pem`)!)).toContain(
          `URI:dispenser://${cluster}/ledger/${n}`,
        );
      for (const dc of [0, 1, 2]) {
        const san = identity(secrets.get(`dispenser-edge-dc${dc}-tls`)!.get("edge.pem")!);
        expect(san).toContain(`URI:dispenser://${cluster}/edge/dc${dc}`);
        expect(san).toContain(`DNS:edge-dc${dc}`); // the Service's name, for clients' hostname checks
      }
      expect(identity(secrets.get("dispenser-admin-tls")!.get("admin.pem")!)).toContain(
        `URI:dispenser://${cluster}/admin/ops`,
      );
      const usersFile = join(tmp, "users");
      writeFileSync(usersFile, secrets.get("dispenser-users")!.get("users")!);
      const users = Users.load(usersFile);
      const token = (await readFile(join(tmp, "ca", "app.token"), "utf8")).trim();
      expect(users.checkToken(token)?.role).toBe("issue");
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }, 60_000);

  it("Services select pods that have the ports they target", () => {
    const workloads = docs.filter((d) => d.kind === "StatefulSet" || d.kind === "Deployment");
    for (const svc of docs.filter((d) => d.kind === "Service")) {
      const name = str(at(svc, "metadata.name"), "name");
      const sel = obj(at(svc, "spec.selector"), `${name} selector`);
      const w = workloads.find((x) => {
        const labels = obj(at(x, "spec.template.metadata.labels"), "labels");
        return Object.entries(sel).every(([k, v]) => labels[k] === v);
      });
      expect(w, `Service ${name} selects no workload`).toBeDefined();
      const containerPorts = (at(w, "spec.template.spec.containers") as Obj[]).flatMap((c) =>
        arr(c.ports, "ports").map((p) => obj(p, "port")),
      );
      for (const p of arr(at(svc, "spec.ports"), "ports").map((pp) => obj(pp, "port"))) {
        const target = p.targetPort ?? p.port;
        const ok = containerPorts.some((cp) => cp.name === target || cp.containerPort === target);
        expect(ok, `Service ${name}: no container port ${String(target)}`).toBe(true);
      }
    }
  });
});
