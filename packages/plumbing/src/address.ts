// Listen and connect addresses: "host:port", the host possibly a bracketed IPv6 literal.

/** Why `addr` is not host:port, or undefined when it is. */
export function hostPortError(addr: string): string | undefined {
  const i = addr.lastIndexOf(":");
  const portText = addr.slice(i + 1);
  return i <= 0 || !/^[0-9]{1,5}$/.test(portText) || Number(portText) > 65535
    ? `"${addr}" is not host:port`
    : undefined;
}

/** Host and port of "host:port"; throws (with `hostPortError`'s reason) on anything else. */
export function splitHostPort(addr: string): { host: string; port: number } {
  const err = hostPortError(addr);
  if (err !== undefined) throw new RangeError(err);
  const i = addr.lastIndexOf(":");
  return { host: addr.slice(0, i), port: Number(addr.slice(i + 1)) };
}

/** Whether "host:port" stays on this machine (127.0.0.0/8, ::1, localhost): plaintext is fine there. */
export function isLoopback(addr: string): boolean {
  const i = addr.lastIndexOf(":");
  const host = (i > 0 ? addr.slice(0, i) : addr).replace(/^\[(.*)\]$/, "$1");
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === "::1" || host === "localhost";
}
