// Where a command writes. The process's streams in main(), buffers in tests.

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** Whether `out` is a terminal (live progress lines rewrite themselves only there). */
  readonly isTTY: boolean;
  readonly env: Readonly<Record<string, string | undefined>>;
}

export const processIo: Io = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
  isTTY: process.stdout.isTTY === true,
  env: process.env,
};

/** An Io that keeps what is written, for tests and embedding. */
export class BufferIo implements Io {
  stdout = "";
  stderr = "";
  constructor(
    readonly env: Readonly<Record<string, string | undefined>> = {},
    readonly isTTY = false,
  ) {}
  out(t: string): void {
    this.stdout += t;
  }
  err(t: string): void {
    this.stderr += t;
  }
}
