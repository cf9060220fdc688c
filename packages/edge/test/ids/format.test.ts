import { describe, expect, test } from "vitest";
import type { IdFormatOptions } from "../../src/ids/format.js";
import { IdFormat, idToDecimal, validateIdFormatOptions } from "../../src/ids/format.js";
import { Prng } from "@dispenser/raft";

const INT64_MAX = (1n << 63n) - 1n;
const SEPT_9_2025 = Date.UTC(2025, 8, 9, 13, 45, 12, 345);
const DAY_MS = 86_400_000;

function reasonOf(format: IdFormat, text: string): string {
  const r = format.parseFormatted(text);
  if (r.ok) throw new Error(`"${text}" was accepted as ${r.id}`);
  return r.reason;
}

describe("idToDecimal", () => {
  test("matches toString at every boundary and on random ids", () => {
    const rng = new Prng(3);
    const ids = [
      0n,
      1n,
      9n,
      10n,
      (1n << 31n) - 1n,
      1n << 31n,
      (1n << 32n) + 1n,
      (1n << 53n) - 1n,
      1n << 53n,
      (1n << 53n) + 1n,
      999_999_999_999_999_999n,
      10n ** 18n,
      INT64_MAX - 1n,
      INT64_MAX,
      ...Array.from({ length: 2_000 }, (_, i) => rng.below(1n << BigInt(1 + (i % 63)))),
    ];
    for (const id of ids) expect(idToDecimal(id)).toBe(id.toString());
  });

  test("refuses ids outside 0..2^63-1", () => {
    expect(() => idToDecimal(-1n)).toThrow(new RangeError("id -1 is outside 0..2^63-1"));
    expect(() => idToDecimal(INT64_MAX + 1n)).toThrow(RangeError);
  });
});

describe("formatting", () => {
  test("type 2 with a prefix: ORD00000001", () => {
    const f = new IdFormat({ prefix: "ORD", width: 8 });
    expect(f.formatId(1n)).toBe("ORD00000001");
    expect(f.formatId(99_999_999n)).toBe("ORD99999999");
    expect(f.parseFormatted("ORD00000001")).toEqual({ ok: true, id: 1n });
  });

  test("fixed-length ids are exactly `length` digits, padding is a no-op", () => {
    const f = new IdFormat({ width: 7 });
    expect(f.formatId(1_000_000n)).toBe("1000000");
    expect(f.formatId(9_999_999n)).toBe("9999999");
  });

  test("a date stamp and a daily counter: 20250909000001", () => {
    const f = new IdFormat({ date: "YYYYMMDD", width: 6 });
    expect(f.formatId(1n, SEPT_9_2025)).toBe("20250909000001");
    expect(f.parseFormatted("20250909000001")).toEqual({ ok: true, id: 1n, dayMs: Date.UTC(2025, 8, 9) });
    const short = new IdFormat({ prefix: "T-", date: "YYMMDD" });
    expect(short.formatId(42n, SEPT_9_2025)).toBe("T-25090942");
    expect(short.parseFormatted("T-25090942")).toEqual({ ok: true, id: 42n, dayMs: Date.UTC(2025, 8, 9) });
  });

  test("the stamp is the UTC day and changes exactly at UTC midnight", () => {
    const f = new IdFormat({ date: "YYYYMMDD", width: 2 });
    const midnight = Date.UTC(2025, 11, 31);
    expect(f.formatId(7n, midnight - 1)).toBe("2025123007");
    expect(f.formatId(7n, midnight)).toBe("2025123107");
    expect(f.formatId(7n, midnight + DAY_MS - 1)).toBe("2025123107");
    expect(f.formatId(7n, midnight + DAY_MS)).toBe("2026010107");
    expect(f.formatId(7n, midnight - 1)).toBe("2025123007"); // going back does not reuse a stale stamp
    expect(f.formatId(7n, Date.UTC(2024, 1, 29, 23))).toBe("2024022907");
    expect(f.formatId(7n, 0)).toBe("1970010107");
    expect(f.formatId(7n, Date.UTC(9999, 11, 31, 23, 59, 59, 999))).toBe("9999123107");
  });

  test("round trip: every format, random ids and times", () => {
    const rng = new Prng(11);
    const prefixes = [undefined, "ORD", "a.b-1:_", "X".repeat(32)];
    const widths = [undefined, 1, 6, 8, 18, 19];
    const dates = [undefined, "YYYYMMDD", "YYMMDD"] as const;
    for (const prefix of prefixes) {
      for (const width of widths) {
        for (const date of dates) {
          const f = new IdFormat({ prefix, width, date });
          const idMax = width === undefined || width === 19 ? INT64_MAX : 10n ** BigInt(width) - 1n;
          const [fromMs, toMs] =
            date === "YYMMDD" ? [Date.UTC(2000, 0, 1), Date.UTC(2100, 0, 1)] : [0, Date.UTC(10000, 0, 1)];
          const ids = [0n, 1n, idMax, ...Array.from({ length: 200 }, () => rng.below(idMax + 1n))];
          for (const id of ids) {
            const atMs = fromMs + Math.floor((rng.u32() / 2 ** 32) * (toMs - fromMs));
            const text = f.formatId(id, atMs);
            const parsed = f.parseFormatted(text);
            const dayMs = Math.floor(atMs / DAY_MS) * DAY_MS;
            expect(parsed).toEqual(date === undefined ? { ok: true, id } : { ok: true, id, dayMs });
            if (width !== undefined)
              expect(text).toHaveLength((prefix ?? "").length + (date ?? "").length + width);
          }
        }
      }
    }
  });
});

describe("bad options", () => {
  test.each([
    [{ prefix: "" }, "prefix"],
    [{ prefix: "OR D" }, "prefix"],
    [{ prefix: "ÖRD" }, "prefix"],
    [{ prefix: "X".repeat(33) }, "prefix"],
    [{ width: 0 }, "width"],
    [{ width: 20 }, "width"],
    [{ width: 1.5 }, "width"],
    [{ date: "DDMMYYYY" }, "date"],
  ] as [IdFormatOptions, string][])("%o is refused on %s", (options, field) => {
    const errors = validateIdFormatOptions(options);
    expect(errors.map((e) => e.field)).toEqual([field]);
    expect(() => new IdFormat(options)).toThrow(new RangeError(errors[0]!.reason));
  });

  test("all problems are reported together", () => {
    const errors = validateIdFormatOptions({ prefix: "", width: 0, date: "X" as "YYMMDD" });
    expect(errors.map((e) => e.field)).toEqual(["prefix", "width", "date"]);
  });

  test("valid options report nothing", () => {
    expect(validateIdFormatOptions({})).toEqual([]);
    expect(validateIdFormatOptions({ prefix: "ORD", width: 19, date: "YYMMDD" })).toEqual([]);
  });
});

describe("formatting refuses what the format cannot express", () => {
  test("ids outside the width or outside int64", () => {
    const f = new IdFormat({ prefix: "ORD", width: 8 });
    expect(() => f.formatId(100_000_000n)).toThrow(
      new RangeError("id 100000000 is outside 0..99999999 of this format"),
    );
    expect(() => f.formatId(-1n)).toThrow(RangeError);
    expect(() => new IdFormat().formatId(INT64_MAX + 1n)).toThrow(RangeError);
  });

  test("times: missing, fractional, negative, beyond the date format's years", () => {
    const f = new IdFormat({ date: "YYYYMMDD" });
    expect(() => f.formatId(1n)).toThrow(new RangeError("format with date YYYYMMDD needs a time"));
    for (const atMs of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Date.UTC(10000, 0, 1)]) {
      expect(() => f.formatId(1n, atMs)).toThrow(RangeError);
    }
    const short = new IdFormat({ date: "YYMMDD" });
    expect(() => short.formatId(1n, Date.UTC(1999, 11, 31, 23))).toThrow(RangeError);
    expect(() => short.formatId(1n, Date.UTC(2100, 0, 1))).toThrow(RangeError);
    expect(short.formatId(1n, Date.UTC(2099, 11, 31, 23))).toBe("9912311");
  });

  test("a time passed to a format without a date is ignored", () => {
    expect(new IdFormat({ width: 3 }).formatId(5n, SEPT_9_2025)).toBe("005");
  });
});

describe("parsing refuses text that cannot belong", () => {
  const ord = new IdFormat({ prefix: "ORD", width: 8 });
  const dated = new IdFormat({ prefix: "D", date: "YYYYMMDD", width: 4 });
  const plain = new IdFormat();

  test("empty and overlong text", () => {
    expect(reasonOf(ord, "")).toBe("text is empty");
    expect(reasonOf(ord, "ORD000000001")).toBe("text has 12 characters, more than the 11 of this format");
    expect(reasonOf(plain, "1".repeat(20))).toBe("text has 20 characters, more than the 19 of this format");
    expect(reasonOf(plain, "9".repeat(100_000))).toMatch(/more than the 19/);
  });

  test("a missing or different prefix, matched case-sensitively", () => {
    for (const text of ["00000001", "ord00000001", "ORX00000001", " ORD0000001", "OR00000001"]) {
      expect(reasonOf(ord, text)).toBe('text does not start with the prefix "ORD"');
    }
  });

  test("a number that is missing, not decimal, or of the wrong width", () => {
    expect(reasonOf(ord, "ORD")).toBe("text has no number after its prefix and date");
    expect(reasonOf(ord, "ORD0000000a")).toBe('"0000000a" is not a decimal number');
    expect(reasonOf(ord, "ORD+0000001")).toBe('"+0000001" is not a decimal number');
    expect(reasonOf(ord, "ORD-0000001")).toBe('"-0000001" is not a decimal number');
    expect(reasonOf(ord, "ORD 0000001")).toBe('" 0000001" is not a decimal number');
    expect(reasonOf(ord, "ORD０００００００１")).toBe('"０００００００１" is not a decimal number');
    expect(reasonOf(ord, "ORD0000001")).toBe('the number "0000001" has 7 digits; this format has exactly 8');
  });

  test("without a width: no leading zeros, nothing above 2^63-1", () => {
    expect(plain.parseFormatted("0")).toEqual({ ok: true, id: 0n });
    expect(reasonOf(plain, "007")).toBe('the number "007" has a leading zero');
    expect(plain.parseFormatted(INT64_MAX.toString())).toEqual({ ok: true, id: INT64_MAX });
    expect(reasonOf(plain, (INT64_MAX + 1n).toString())).toBe(
      "the number 9223372036854775808 is above the largest id, 9223372036854775807",
    );
    expect(reasonOf(new IdFormat({ width: 19 }), "9999999999999999999")).toMatch(/above the largest id/);
  });

  test("a date stamp that is missing, not a date, or before 1970", () => {
    expect(dated.parseFormatted("D202509090001")).toEqual({ ok: true, id: 1n, dayMs: Date.UTC(2025, 8, 9) });
    expect(reasonOf(dated, "D2025")).toBe("text has no YYYYMMDD date stamp where one belongs");
    expect(reasonOf(dated, "D2025O9090001")).toBe("text has no YYYYMMDD date stamp where one belongs");
    for (const stamp of ["20250230", "20251301", "20250900", "20250932", "19691231", "00000101"]) {
      expect(reasonOf(dated, `D${stamp}0001`)).toBe(
        `date stamp ${stamp} is not a YYYYMMDD date from 1970 on`,
      );
    }
    expect(dated.parseFormatted("D202402290001").ok).toBe(true);
    expect(reasonOf(dated, "D202302290001")).toMatch(/not a YYYYMMDD date/);
    expect(reasonOf(dated, "D20250909")).toBe("text has no number after its prefix and date");
    const short = new IdFormat({ date: "YYMMDD" });
    expect(short.parseFormatted("0002291")).toEqual({ ok: true, id: 1n, dayMs: Date.UTC(2000, 1, 29) });
    expect(reasonOf(short, "0102291")).toBe("date stamp 010229 is not a YYMMDD date from 1970 on");
  });
});
