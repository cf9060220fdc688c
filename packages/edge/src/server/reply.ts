import type { IdMap } from "../issuing/id-map.js";

// What the RESP command handlers write replies through: one call per RESP value, in the
// connection's protocol version (2 or 3). The server binds it to the encoder's output buffer.
export interface Reply {
  /** The connection's protocol; HELLO sets it before writing its answer. */
  proto: 2 | 3;
  ok(): void;
  simple(s: string): void;
  /** `text` starts with the error code: "ERR ...", "NOAUTH ...", "NOPROTO ...". */
  error(text: string): void;
  int(n: number | bigint): void;
  bulk(s: string): void;
  /** An id as a bulk string: its text under `map` (digits written directly when unpadded). */
  id(id: bigint, map: IdMap): void;
  nil(): void;
  array(n: number): void;
  /** A map of n pairs: `%n` in RESP3, a flat array of 2n in RESP2. */
  map(n: number): void;
}
