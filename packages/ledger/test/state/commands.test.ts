import { describe, expect, test } from "vitest";
import type { Command } from "../../src/state/commands.js";
import { decodeCommand, encodeCommand, leaseJson, MAX_COMMAND_BYTES } from "../../src/state/commands.js";
import { canonicalJson } from "../../src/state/json.js";
import { normalizeSequenceDef } from "@dispenser/domain";
import { Prng } from "@dispenser/raft";

const spec = normalizeSequenceDef({ name: "orders", type: 2, length: 8, datacenters: 3, ordering: "dc" });
if (!spec.ok) throw new Error("bad fixture");
const type3 = normalizeSequenceDef({
  name: "t",
  type: 3,
  starting: 0n,
  step: 7n,
  layout: "prefix",
  datacenters: 16,
  reserveSeconds: 60,
});
if (!type3.ok) throw new Error("bad fixture");

const samples: Command[] = [
  { type: "CreateSequence", def: spec.def, createdAtMs: 1_757_376_000_000 },
  { type: "CreateSequence", def: type3.def, createdAtMs: 0 },
  { type: "UpdateSequence", name: "orders", changes: { autoDisk: "memory" } },
  {
    type: "UpdateSequence",
    name: "orders",
    changes: { ordering: "global", autoDisk: "pre_close", limits: { maxSegmentSize: 500n } },
  },
  { type: "DeleteSequence", name: "orders" },
  { type: "DeleteSequence", name: "orders", expectedRevision: 7n },
  { type: "UpdateSequence", name: "orders", changes: { ordering: "edge" }, expectedRevision: 3n },
  { type: "UpdateSequence", name: "orders", changes: { reserveSeconds: 0 } },
  {
    type: "LeaseSegment",
    name: "orders",
    dc: 2,
    size: 1000n,
    requestId: "edge-1:42",
    kind: "segment",
    returnToken: "0123456789abcdef0123456789abcdef",
  },
  {
    type: "LeaseSegment",
    name: "orders",
    dc: 0,
    size: 100_000_000n,
    requestId: "w",
    kind: "window",
    returnToken: "0123456789abcdef0123456789abcdef",
    keyFingerprint: "00ff00ff00ff00ff",
  },
  {
    type: "ReturnSegment",
    name: "orders",
    dc: 1,
    start: 500n,
    end: 9_223_372_036_854_775_807n,
    fence: { term: 3, index: 1234 },
    returnToken: "0123456789abcdef0123456789abcdef",
    requestId: "edge-1:43",
  },
];

const text = (s: string): Uint8Array => new Uint8Array([1, ...new TextEncoder().encode(s)]);

function rejected(data: Uint8Array): string {
  const r = decodeCommand(data);
  if (r.ok) throw new Error(`accepted ${new TextDecoder().decode(data)}`);
  return r.message;
}

describe("encoding", () => {
  test.each(samples.map((c, i) => [`${i}: ${c.type}`, c] as const))("%s round-trips", (_, cmd) => {
    const bytes = encodeCommand(cmd);
    expect(bytes[0]).toBe(2);
    expect(decodeCommand(bytes)).toEqual({ ok: true, command: cmd });
    expect(encodeCommand(cmd)).toEqual(bytes);
  });

  test("a lease's JSON, written out directly, is its canonical JSON", () => {
    const rng = new Prng(7);
    const text = (n: number): string =>
      Array.from({ length: n }, () => String.fromCharCode(rng.range(0, 0x2fff))).join("");
    for (let i = 0; i < 500; i++) {
      const cmd = {
        type: "LeaseSegment" as const,
        name: i % 2 === 0 ? `seq-${i}` : text(rng.range(0, 20)),
        dc: rng.range(0, 1023),
        size: BigInt(rng.range(1, 1_000_000)) * BigInt(rng.range(1, 1_000_000)),
        requestId: i % 3 === 0 ? `r"\\${i}` : text(rng.range(0, 64)),
        kind: i % 2 === 0 ? ("segment" as const) : ("window" as const),
        returnToken: rng.range(0, 1) === 0 ? "" : "ab".repeat(16),
        ...(i % 5 === 0 ? { keyFingerprint: "0123456789abcdef" } : {}),
      };
      const canonical = canonicalJson({
        type: cmd.type,
        name: cmd.name,
        dc: cmd.dc,
        size: cmd.size.toString(),
        requestId: cmd.requestId,
        kind: cmd.kind,
        returnToken: cmd.returnToken,
        ...(cmd.keyFingerprint === undefined ? {} : { keyFingerprint: cmd.keyFingerprint }),
      });
      expect(leaseJson(cmd)).toBe(canonical);
    }
  });

  test("bytes do not depend on the order fields were written in", () => {
    const returnToken = "ab".repeat(16);
    const a: Command = {
      type: "LeaseSegment",
      name: "o",
      dc: 1,
      size: 5n,
      requestId: "r",
      kind: "segment",
      returnToken,
    };
    const b: Command = {
      returnToken,
      kind: "segment",
      requestId: "r",
      size: 5n,
      dc: 1,
      name: "o",
      type: "LeaseSegment",
    };
    expect(encodeCommand(a)).toEqual(encodeCommand(b));
    expect(new TextDecoder().decode(encodeCommand(a).subarray(1))).toBe(
      `{"dc":1,"kind":"segment","name":"o","requestId":"r","returnToken":"${returnToken}","size":"5","type":"LeaseSegment"}`,
    );
  });

  test("entries of format 1 (before return tokens) still decode, without a token", () => {
    const v1 = new TextEncoder().encode(
      '\x01{"dc":1,"kind":"segment","name":"o","requestId":"r","size":"5","type":"LeaseSegment"}',
    );
    expect(decodeCommand(v1)).toEqual({
      ok: true,
      command: {
        type: "LeaseSegment",
        name: "o",
        dc: 1,
        size: 5n,
        requestId: "r",
        kind: "segment",
        returnToken: "",
      },
    });
    // A format 1 entry cannot carry a field format 2 added.
    const bad = new TextEncoder().encode(
      '\x01{"dc":1,"kind":"segment","name":"o","requestId":"r","returnToken":"","size":"5","type":"LeaseSegment"}',
    );
    expect(decodeCommand(bad)).toMatchObject({ ok: false });
  });
});

describe("malformed input is rejected with a reason", () => {
  const lease = (over: Record<string, unknown>): Uint8Array =>
    text(
      JSON.stringify({
        type: "LeaseSegment",
        name: "o",
        dc: 0,
        size: "5",
        requestId: "r",
        kind: "segment",
        ...over,
      }),
    );

  test.each([
    ["empty", new Uint8Array(), "command is empty"],
    ["unknown format byte", new Uint8Array([3, 123, 125]), "unknown command format 3"],
    ["invalid UTF-8", new Uint8Array([1, 0xff, 0xfe]), "command is not valid UTF-8"],
    ["not JSON", text("{type:"), "command is not valid JSON"],
    ["JSON array", text("[1,2]"), "command must be an object"],
    ["JSON null", text("null"), "command must be an object"],
    ["unknown type", text('{"type":"Drop"}'), 'unknown command type "Drop"'],
    ["type not a string", text('{"type":{"x":1}}'), "unknown command type object"],
    ["missing field", text('{"type":"DeleteSequence"}'), "command.name is missing"],
    ["unknown field", lease({ extra: 1 }), 'command has an unknown field "extra"'],
    ["field of another command", lease({ changes: {} }), 'command has an unknown field "changes"'],
    [
      "__proto__ key",
      text('{"type":"DeleteSequence","name":"o","__proto__":{}}'),
      'unknown field "__proto__"',
    ],
    ["dc as string", lease({ dc: "0" }), "command.dc must be a safe integer"],
    ["dc fractional", lease({ dc: 0.5 }), "command.dc must be a safe integer"],
    ["size as number", lease({ size: 5 }), "command.size must be a decimal integer string"],
    ["size with leading zero", lease({ size: "05" }), "command.size must be a decimal integer string"],
    ["size in exponent form", lease({ size: "1e3" }), "command.size must be a decimal integer string"],
    ["size -0", lease({ size: "-0" }), "command.size must be a decimal integer string"],
    ["size of 21 digits", lease({ size: "1".repeat(21) }), "command.size must be a decimal integer string"],
    ["size 0", lease({ size: "0" }), "size must be >= 1"],
    ["negative size", lease({ size: "-5" }), "size must be >= 1"],
    ["dc 1024", lease({ dc: 1024 }), "dc must be between 0 and 1023"],
    ["empty requestId", lease({ requestId: "" }), "requestId must be 1..64 printable ASCII characters"],
    ["requestId of 65 chars", lease({ requestId: "r".repeat(65) }), "requestId must be 1..64"],
    ["requestId with a space", lease({ requestId: "a b" }), "requestId must be 1..64"],
    ["kind", lease({ kind: "lease" }), "kind must be one of segment, window"],
    ["bad name", lease({ name: "a b" }), "name must be 1..64 characters"],
    [
      "empty return range",
      text(
        '{"type":"ReturnSegment","name":"o","dc":0,"start":"5","end":"5","fence":{"term":1,"index":2},"requestId":"r"}',
      ),
      "range [5, 5) is empty",
    ],
    [
      "negative fence",
      text(
        '{"type":"ReturnSegment","name":"o","dc":0,"start":"5","end":"6","fence":{"term":-1,"index":2},"requestId":"r"}',
      ),
      "fence term and index must be non-negative",
    ],
    [
      "fence with extra field",
      text(
        '{"type":"ReturnSegment","name":"o","dc":0,"start":"5","end":"6","fence":{"term":1,"index":2,"x":0},"requestId":"r"}',
      ),
      'command.fence has an unknown field "x"',
    ],
    [
      "empty changes",
      text('{"type":"UpdateSequence","name":"o","changes":{}}'),
      "changes must set at least one",
    ],
    [
      "unsafe change",
      text('{"type":"UpdateSequence","name":"o","changes":{"step":"2"}}'),
      'command.changes has an unknown field "step"',
    ],
    [
      "oversized",
      text(`{"type":"DeleteSequence","name":"${"x".repeat(MAX_COMMAND_BYTES)}"}`),
      "more than 16384",
    ],
  ])("%s", (_, data, reason) => {
    expect(rejected(data)).toContain(reason);
  });

  test("an invalid definition is rejected with the definition's reasons", () => {
    const bad = new TextDecoder()
      .decode(encodeCommand(samples[0]!).subarray(1))
      .replace('"length":8', '"length":19')
      .replace('"step":"1"', '"step":"0"');
    expect(rejected(text(bad))).toBe(
      "invalid sequence definition: length must be between 1 and 18; step must be > 0",
    );
  });

  test("fuzz: random and mutated bytes never throw; what decodes re-encodes to a command that decodes the same", () => {
    const rng = new Prng(7);
    const valid = samples.map(encodeCommand);
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      let data: Uint8Array;
      if (rng.chance(0.3)) data = rng.bytes(rng.intn(64));
      else {
        data = Uint8Array.from(rng.pick(valid));
        for (let k = rng.range(1, 3); k > 0; k--) {
          const at = rng.intn(data.length);
          if (rng.chance(0.7)) data[at] = rng.chance(0.5) ? rng.intn(256) : rng.range(0x20, 0x7e);
          else data = Uint8Array.from([...data.subarray(0, at), ...data.subarray(at + 1)]);
        }
      }
      const r = decodeCommand(data);
      if (r.ok) {
        accepted++;
        expect(decodeCommand(encodeCommand(r.command))).toEqual(r);
      } else expect(r.message.length).toBeGreaterThan(0);
    }
    expect(accepted).toBeGreaterThan(0);
  });
});
