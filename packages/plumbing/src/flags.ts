// Command-line flags of every process and command (the ledger, the edge, the CLI's commands), with
// one precedence rule: the command line wins over the --config file, the file over the
// environment, the environment over the defaults. Each command declares its flags once (a
// CommandSpec: name, default, environment variable, help); parsing (node:util parseArgs),
// validation and the --help text follow from it.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

/** A bad command line: what is wrong, for the user. */
export class FlagError extends Error {
  constructor(
    message: string,
    /** The command whose flags these are. */
    readonly command: string,
  ) {
    super(message);
    this.name = "FlagError";
  }
}

/** How a caller reports a bad command line (its own error type, its exit code). */
export type FlagErrorFactory = (message: string, command: string) => Error;
const flagError: FlagErrorFactory = (message, command) => new FlagError(message, command);

export interface FlagSpec {
  /** Long name without dashes: "resp-listen". */
  readonly name: string;
  /** One-letter alias without the dash: "n". */
  readonly short?: string;
  /** A switch: present means true (or `--flag=false`). */
  readonly boolean?: boolean;
  /** What the value looks like in --help: "host:port", "N". */
  readonly value?: string;
  /** The default, as text; undefined for none. */
  readonly default?: string;
  /** Environment variable that sets it. */
  readonly env?: string;
  readonly help: string;
}

export interface CommandSpec {
  /** As typed after `dispenser`: "seq create". */
  readonly name: string;
  /** The usage line's program; default `dispenser <name>`. */
  readonly program?: string;
  /** Flags without an `env` of their own are read from <envPrefix><FLAG> (dashes as underscores). */
  readonly envPrefix?: string;
  /** Positional arguments in the usage line: "<name>". */
  readonly args?: string;
  readonly summary: string;
  readonly flags: readonly FlagSpec[];
  /** Extra paragraphs for --help. */
  readonly notes?: string;
}

/** Flags every command takes. */
export const COMMON_FLAGS: readonly FlagSpec[] = [
  {
    name: "config",
    value: "file.json",
    help: "read flags from a JSON object whose keys are flag names (without dashes)",
  },
  { name: "help", short: "h", boolean: true, help: "print this help" },
];

export const PRECEDENCE_NOTE =
  "Precedence: flags on the command line, then the --config file, then environment variables, then defaults.";

type Source = "default" | "env" | "config" | "argv";

/** The environment variable of a flag: its own, else the command's prefix and its name. */
export function envOf(spec: CommandSpec, f: FlagSpec): string | undefined {
  if (f.env !== undefined) return f.env;
  if (spec.envPrefix === undefined || f.name === "help" || f.name === "config") return undefined;
  return `${spec.envPrefix}${f.name.toUpperCase().replace(/-/g, "_")}`;
}

export class Flags {
  constructor(
    readonly command: string,
    private readonly values: ReadonlyMap<string, { value: string; source: Source }>,
    readonly positionals: readonly string[],
    private readonly fail: FlagErrorFactory = flagError,
  ) {}

  private usageError(message: string): Error {
    return this.fail(message, this.command);
  }

  has(name: string): boolean {
    const v = this.values.get(name);
    return v !== undefined && v.source !== "default";
  }

  str(name: string): string | undefined {
    return this.values.get(name)?.value;
  }

  required(name: string): string {
    const v = this.str(name);
    if (v === undefined || v === "") throw this.usageError(`--${name} is required`);
    return v;
  }

  bool(name: string): boolean {
    return this.str(name) === "true";
  }

  int(name: string, min: number, max: number): number | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    const n = /^-?[0-9]+$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max)
      throw this.usageError(
        `--${name} must be an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `${min}..${max}`}, got "${v}"`,
      );
    return n;
  }

  /** A non-negative integer of any size (ids, starting values). */
  uint(name: string, max: bigint): bigint | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    if (!/^[0-9]{1,20}$/.test(v) || BigInt(v) > max)
      throw this.usageError(`--${name} must be an integer 0..${max}, got "${v}"`);
    return BigInt(v);
  }

  /** Seconds as a positive number (fractions allowed). */
  seconds(name: string, max: number): number | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    const n = /^[0-9]+(\.[0-9]+)?$/.test(v) ? Number(v) : NaN;
    if (!(n > 0 && n <= max))
      throw this.usageError(`--${name} must be a number of seconds in (0, ${max}], got "${v}"`);
    return n;
  }

  oneOf<T extends string>(name: string, choices: readonly T[]): T | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    if (!(choices as readonly string[]).includes(v))
      throw this.usageError(`--${name} must be one of ${choices.join(", ")}, got "${v}"`);
    return v as T;
  }

  /** host:port,... as a list; an empty value gives an empty list. */
  list(name: string): string[] {
    return (this.str(name) ?? "")
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
  }

  /** Positional argument `i`, or a usage error naming what is missing. */
  arg(i: number, what: string): string {
    const v = this.positionals[i];
    if (v === undefined || v === "") throw this.usageError(`missing ${what}`);
    return v;
  }

  /** Refuses positionals beyond the first `n`. */
  noMoreThan(n: number): void {
    const extra = this.positionals[n];
    if (extra !== undefined) throw this.usageError(`unexpected argument "${extra}"`);
  }
}

function configValue(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "number" && Number.isFinite(v)) return String(v);
  if (typeof v === "boolean") return String(v);
  if (Array.isArray(v) && v.every((x) => typeof x === "string" || typeof x === "number")) return v.join(",");
  return undefined;
}

/** Reads a --config file: a JSON object of flag name → string, number, boolean or list. */
export function readConfig(
  path: string,
  command: string,
  known: ReadonlySet<string>,
  fail: FlagErrorFactory = flagError,
): Map<string, string> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw fail(`cannot read config file ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, command);
  }
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw fail(`config file ${path} is not JSON: ${(e as Error).message}`, command);
  }
  if (typeof obj !== "object" || obj === null || Array.isArray(obj))
    throw fail(`config file ${path} must hold a JSON object of flag names`, command);
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(obj)) {
    const name = k.replace(/^--?/, "");
    if (!known.has(name) || name === "config" || name === "help")
      throw fail(`config file ${path}: unknown key "${k}"`, command);
    const s = configValue(v);
    if (s === undefined)
      throw fail(`config file ${path}: "${k}" must be a string, number, boolean or list`, command);
    out.set(name, s);
  }
  return out;
}

/** Parses `argv` (the arguments after the command's name) against `spec`. */
export function parseFlags(
  spec: CommandSpec,
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
  fail: FlagErrorFactory = flagError,
): Flags {
  const all = [...spec.flags, ...COMMON_FLAGS];
  const byName = new Map(all.map((f) => [f.name, f]));
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  for (const f of all)
    options[f.name] = { type: f.boolean ? "boolean" : "string", ...(f.short ? { short: f.short } : {}) };
  // Not strict: every token comes back, and the checks below word the errors (and allow
  // --switch=false, which parseArgs refuses).
  const { tokens } = parseArgs({
    args: [...argv],
    options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const argvValues = new Map<string, string>();
  const positionals: string[] = [];
  for (const t of tokens) {
    if (t.kind === "positional") positionals.push(t.value);
    if (t.kind !== "option") continue;
    const f = byName.get(t.name);
    if (f === undefined) throw fail(`unknown flag ${t.rawName}`, spec.name);
    if (f.boolean) {
      const inline = t.inlineValue ? t.value : undefined;
      if (inline !== undefined && inline !== "true" && inline !== "false")
        throw fail(`--${f.name} takes no value (or =true/=false), got "${inline}"`, spec.name);
      argvValues.set(f.name, inline ?? "true");
    } else {
      if (t.value === undefined) throw fail(`--${f.name} needs a value`, spec.name);
      // parseArgs reads -n=4 as the value "=4"; --n=4 it splits itself.
      const short = !t.rawName.startsWith("--");
      argvValues.set(f.name, short && t.value.startsWith("=") ? t.value.slice(1) : t.value);
    }
  }
  const values = new Map<string, { value: string; source: Source }>();
  for (const f of all)
    if (f.default !== undefined) values.set(f.name, { value: f.default, source: "default" });
  for (const f of all) {
    const name = envOf(spec, f);
    const v = name !== undefined ? env[name] : undefined;
    if (v !== undefined && v !== "") values.set(f.name, { value: v, source: "env" });
  }
  const configPath = argvValues.get("config") ?? values.get("config")?.value;
  if (configPath !== undefined && argvValues.get("help") !== "true") {
    for (const [k, v] of readConfig(configPath, spec.name, new Set(byName.keys()), fail)) {
      if (byName.get(k)?.boolean && v !== "true" && v !== "false")
        throw fail(`config file ${configPath}: "${k}" must be true or false`, spec.name);
      values.set(k, { value: v, source: "config" });
    }
  }
  for (const [k, v] of argvValues) values.set(k, { value: v, source: "argv" });
  return new Flags(spec.name, values, positionals, fail);
}

/** The --help text of a command: every flag with its default and environment variable. */
export function helpText(spec: CommandSpec): string {
  const all = [...spec.flags, ...COMMON_FLAGS];
  const left = all.map((f) => {
    const names = `${f.short !== undefined ? `-${f.short}, ` : "    "}--${f.name}`;
    return f.boolean ? names : `${names} ${f.value ?? "value"}`;
  });
  const width = Math.max(...left.map((l) => l.length)) + 2;
  const lines = all.map((f, i) => {
    const extra = [
      f.default !== undefined ? `default: ${f.default === "" ? '""' : f.default}` : undefined,
      envOf(spec, f) !== undefined ? `env ${envOf(spec, f)}` : undefined,
    ].filter((x) => x !== undefined);
    return `  ${left[i]!.padEnd(width)}${f.help}${extra.length > 0 ? ` (${extra.join("; ")})` : ""}`;
  });
  return [
    `usage: ${spec.program ?? `dispenser ${spec.name}`}${spec.args !== undefined ? ` ${spec.args}` : ""} [flags]`,
    "",
    spec.summary,
    "",
    "flags:",
    ...lines,
    "",
    PRECEDENCE_NOTE,
    ...(spec.notes !== undefined ? ["", spec.notes] : []),
    "",
  ].join("\n");
}
