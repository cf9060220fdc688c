// Guessing secrets, slowed per client address and user, across connections and protocols.
//
// Each failed login for a user from an address opens a window (50 ms, doubling with each failure
// to 5 s) and is answered when it closes. While the window is open, no further secret of that
// user from that address is even checked: such attempts are refused unchecked ("retry later"),
// answered when the window closes. So one address gets at most one check per window per user,
// however many connections or concurrent calls it uses; a sequential client never meets an open
// window (its failure's answer arrives as the window closes), and a right secret is never slowed
// unless its user is being guessed at from the same address. IPv6 addresses count by /64 (one
// host usually holds a whole /64). A success does not forgive earlier failures, and a quiet
// spell does. The table is bounded: past its size the entry heard from least recently is dropped.

export interface LoginThrottleOptions {
  /** (address, user) pairs remembered at once. Default 10,000. */
  readonly maxEntries?: number;
  /** The window after the first failure; each later one twice as long. Default 50 ms. */
  readonly firstDelayMs?: number;
  /** Longest window. Default 5 s. */
  readonly maxDelayMs?: number;
  /** A pair without a failure this long starts over. Default 15 minutes. */
  readonly forgetAfterMs?: number;
  readonly now?: () => number;
}

interface Entry {
  count: number;
  lastMs: number;
  /** Until then, the user's secrets from this address are not checked. */
  notBefore: number;
}

/** The part of a client address that identifies a client: an IPv4 address, or an IPv6 /64. */
export function addressKey(address: string | undefined): string {
  if (address === undefined || address === "") return "?";
  if (!address.includes(":")) return address;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  const [head = "", tail] = address.toLowerCase().split("::");
  const h = head === "" ? [] : head.split(":");
  const t = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups =
    tail === undefined ? h : [...h, ...Array<string>(Math.max(0, 8 - h.length - t.length)).fill("0"), ...t];
  return `${groups
    .slice(0, 4)
    .map((g) => (Number.parseInt(g, 16) || 0).toString(16))
    .join(":")}::/64`;
}

export class LoginThrottle {
  private readonly entries = new Map<string, Entry>();
  private readonly max: number;
  private readonly first: number;
  private readonly cap: number;
  private readonly forget: number;
  private readonly now: () => number;

  constructor(o: LoginThrottleOptions = {}) {
    this.max = o.maxEntries ?? 10_000;
    this.first = o.firstDelayMs ?? 50;
    this.cap = o.maxDelayMs ?? 5_000;
    this.forget = o.forgetAfterMs ?? 15 * 60_000;
    this.now = o.now ?? Date.now;
  }

  /**
   * Before checking `user`'s secret from `address`: undefined (check it), or the ms until the
   * open window closes, when the attempt is to be refused without checking.
   */
  closedFor(address: string | undefined, user: string): number | undefined {
    // Every authenticated call asks: with no failure on record, skip building the key.
    if (this.entries.size === 0) return undefined;
    const e = this.entries.get(`${addressKey(address)} ${user}`);
    const wait = e ? e.notBefore - this.now() : 0;
    return wait > 0 ? wait : undefined;
  }

  /** A failed login: how long until its answer (the window it opens). */
  failed(address: string | undefined, user: string): number {
    const key = `${addressKey(address)} ${user}`;
    const now = this.now();
    const prev = this.entries.get(key);
    const count = prev && now - prev.lastMs < this.forget ? prev.count + 1 : 1;
    const delay = Math.min(this.cap, this.first * 2 ** Math.min(count - 1, 30));
    this.entries.delete(key); // re-inserted last: the Map's order is least recently heard first
    this.entries.set(key, { count, lastMs: now, notBefore: now + delay });
    if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
    return delay;
  }

  /** Pairs remembered now. */
  get size(): number {
    return this.entries.size;
  }
}
