// Command-line flags of one process: `--flag value`, `--flag=value` (split at the first "=", so
// values such as --peers=1=host:port keep theirs), boolean flags, and every flag also from the
// environment as <envPrefix><FLAG> (dashes as underscores). The ledger and the edge share it.

export interface FlagSpec<F extends string> {
  /** The program name in the usage line. */
  readonly program: string;
  /** Environment prefix, e.g. "DISPENSER_LEDGER_". */
  readonly envPrefix: string;
  /** Every flag and its help text (with its default). */
  readonly flags: Readonly<Record<F, string>>;
  /** Flags that take no value. */
  readonly booleans: ReadonlySet<F>;
  /** The error every bad flag is reported with. */
  readonly error: new (message: string) => Error;
}

export function flagUsage<F extends string>(spec: FlagSpec<F>): string {
  const entries = Object.entries<string>(spec.flags);
  const width = Math.max(...entries.map(([k]) => k.length)) + 2;
  const lines = entries.map(([k, v]) => `  --${k.padEnd(width)} ${v}`);
  return `usage: ${spec.program} [flags]\n${lines.join("\n")}\nEach flag may be given as ${spec.envPrefix}<FLAG> in the environment.`;
}

/** The flags given, environment first, the command line over it. */
export function parseFlags<F extends string>(
  spec: FlagSpec<F>,
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Map<F, string> {
  const out = new Map<F, string>();
  for (const k of Object.keys(spec.flags) as F[]) {
    const v = env[`${spec.envPrefix}${k.toUpperCase().replace(/-/g, "_")}`];
    if (v !== undefined) out.set(k, v);
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith("--")) throw new spec.error(`unexpected argument "${a}"`);
    const eq = a.indexOf("=");
    const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
    const inline = eq < 0 ? undefined : a.slice(eq + 1);
    if (!(name in spec.flags)) throw new spec.error(`unknown flag --${name}\n${flagUsage(spec)}`);
    const flag = name as F;
    if (spec.booleans.has(flag)) out.set(flag, inline ?? "true");
    else {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new spec.error(`--${flag} needs a value`);
      out.set(flag, v);
    }
  }
  return out;
}

/** An integer flag within [min, max], or `def` when absent. */
export function intFlag<F extends string>(
  spec: FlagSpec<F>,
  values: ReadonlyMap<F, string>,
  k: F,
  def: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const v = values.get(k);
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `${min}..${max}`;
    throw new spec.error(`--${k} must be an integer ${range}, got "${v}"`);
  }
  return n;
}
