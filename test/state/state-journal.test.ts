import { expect, it } from "vitest";
import { InvalidArgumentError, ReadOnlyError, UnsupportedError } from "../../src/errors.js";
import { useTempDir } from "../support/temp-dir.js";
import { forEachEngine, START } from "./state-harness.js";

const archiveDir = useTempDir("storeroom-journal-");

forEachEngine("StateStore journal", (h) => {
  it("commitToJournal writes a row to the default bucket and returns copies", async () => {
    const s = await h.open();
    const fields = { count: 3 };
    const tags = { host: "a" };
    const res = await s.commitToJournal("sessions", fields, tags);
    fields.count = 99;
    expect(res).toEqual({
      bucket: "store",
      measurement: "sessions",
      fields: { count: 3 },
      tags: { host: "a" },
      committedAt: START,
    });
    const rows = await s.queryJournal();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      bucket_name: "store",
      measurement: "sessions",
      fields: { count: 3 },
      tags: { host: "a" },
      committed_at: START,
      archived_at: null,
    });
  });

  it("uses the configured bucket; null maps become {}", async () => {
    const s = await h.open({
      journal: { endpointUrl: "http://127.0.0.1:8086", organisation: "core", bucketName: "events" },
    });
    await s.commitToJournal("m", null, null);
    expect((await s.queryJournal())[0]).toMatchObject({ bucket_name: "events", fields: {}, tags: {} });
  });

  it("rejects an empty measurement and non-string tags, writing nothing", async () => {
    const s = await h.open();
    await expect(s.commitToJournal("")).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(s.commitToJournal("m", {}, { n: 1 as unknown as string })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    expect(await s.queryJournal()).toEqual([]);
  });

  it("refuses fields or tags that are not objects and a measurement no engine stores as given, writing nothing", async () => {
    const s = await h.open();
    const bad: [string, () => Promise<unknown>, RegExp][] = [
      ["array fields", () => s.commitToJournal("m", [1, 2] as unknown as Record<string, unknown>), /^fields must be/],
      ["string fields", () => s.commitToJournal("m", "x" as unknown as Record<string, unknown>), /^fields must be/],
      ["array tags", () => s.commitToJournal("m", {}, ["a"] as unknown as Record<string, string>), /^tags must be/],
      ["lone surrogate", () => s.commitToJournal("cut\uD83D"), /well-formed Unicode/],
    ];
    if (h.engine === "postgres") bad.push(["U+0000", () => s.commitToJournal("a\u0000b"), /U\+0000/]);
    for (const [what, call, message] of bad) {
      await expect(call(), what).rejects.toMatchObject({
        code: "INVALID_ARGUMENT",
        message: expect.stringMatching(message),
      });
    }
    expect(await s.queryJournal()).toEqual([]);
    // Field and tag values may hold any text: they are stored as JSON.
    const row = await s.commitToJournal("m", { f: "x\u0000\uD800" }, { t: "y\uDC00" });
    expect((await s.queryJournal())[0]).toMatchObject({ fields: row.fields, tags: row.tags });
  });

  it("an empty query returns rows in (committed_at, entry_id) order", async () => {
    const s = await h.open();
    h.clock.set(START + 100);
    await s.commitToJournal("late");
    h.clock.set(START);
    await s.commitToJournal("early-1");
    await s.commitToJournal("early-2");
    expect((await s.queryJournal("")).map((r) => r.measurement)).toEqual(["early-1", "early-2", "late"]);
  });

  it("runs read-only SELECT and WITH statements as SQL", async () => {
    const s = await h.open();
    await s.commitToJournal("a", { n: 1 });
    await s.commitToJournal("b", { n: 2 });
    const rows = await s.queryJournal("SELECT measurement, fields_json FROM journal_entries ORDER BY entry_id");
    expect(rows).toEqual([
      { measurement: "a", fields_json: '{"n":1}', fields: { n: 1 } },
      { measurement: "b", fields_json: '{"n":2}', fields: { n: 2 } },
    ]);
    const cte = await s.queryJournal("WITH m AS (SELECT measurement FROM journal_entries) SELECT COUNT(*) AS n FROM m");
    expect(Number(cte[0]?.n)).toBe(2);
  });

  it("rejects SQL that writes, with ReadOnlyError, and changes nothing", async () => {
    const s = await h.open();
    await s.commitToJournal("a");
    for (const q of [
      "DELETE FROM journal_entries",
      "  insert into journal_entries (bucket_name) values ('x')",
      "UPDATE journal_entries SET measurement = 'x'",
      "DROP TABLE journal_entries",
      "PRAGMA journal_mode = DELETE",
      "WITH x AS (SELECT 1) DELETE FROM journal_entries",
    ]) {
      await expect(s.queryJournal(q), q).rejects.toBeInstanceOf(ReadOnlyError);
    }
    expect(await s.queryJournal()).toHaveLength(1);
  });

  it("Flux: from(bucket:) and _measurement filters", async () => {
    const s = await h.open({ journal: { endpointUrl: "http://x", organisation: "o", bucketName: "events" } });
    await s.commitToJournal("cpu", { v: 1 });
    await s.commitToJournal("mem", { v: 2 });
    const q = 'from(bucket: "events") |> range(start: -1h) |> filter(fn: (r) => r._measurement == "cpu")';
    expect((await s.queryJournal(q)).map((r) => r.measurement)).toEqual(["cpu"]);
    expect(await s.queryJournal('from(bucket: "other") |> range(start: -1h)')).toEqual([]);
    const bracket = 'from(bucket: "events") |> filter(fn: (r) => r["_measurement"] == "mem")';
    expect((await s.queryJournal(bracket)).map((r) => r.measurement)).toEqual(["mem"]);
  });

  it("Flux: tag, string field, numeric and boolean field equality", async () => {
    const s = await h.open();
    await s.commitToJournal("m", { count: 42, ok: true, ratio: 1.5, label: "x" }, { host: "a" });
    await s.commitToJournal("m", { count: 7, ok: false, ratio: 2, label: "y" }, { host: "b" });
    const base = 'from(bucket: "store") |> range(start: -1h) |> filter(fn: (r) => ';
    const measure = async (expr: string) => (await s.queryJournal(`${base}${expr})`)).map((r) => r.tags?.host);
    expect(await measure('r.host == "a"')).toEqual(["a"]);
    expect(await measure('r["host"] == "b"')).toEqual(["b"]);
    expect(await measure('r.label == "y"')).toEqual(["b"]);
    expect(await measure("r.count == 42")).toEqual(["a"]);
    expect(await measure("r.ok == false")).toEqual(["b"]);
    expect(await measure("r.ratio == 1.5")).toEqual(["a"]);
    expect(await measure('r.host == "a" and r.count == 7')).toEqual([]);
    expect(await measure('r._bucket == "store" and r.count == 7')).toEqual(["b"]);
  });

  it("Flux: relative, day-suffix, now() and RFC3339 range bounds; stop is exclusive", async () => {
    const s = await h.open();
    const day = 86_400_000;
    for (const [offset, name] of [
      [-10 * day, "old"],
      [-2 * day, "recent"],
      [-1000, "now-ish"],
    ] as const) {
      h.clock.set(START + offset);
      await s.commitToJournal(name);
    }
    h.clock.set(START);
    const names = async (range: string) =>
      (await s.queryJournal(`from(bucket: "store") |> range(${range})`)).map((r) => r.measurement);
    expect(await names("start: -24h")).toEqual(["now-ish"]);
    expect(await names("start: -7d")).toEqual(["recent", "now-ish"]);
    expect(await names("start: -30d, stop: -1d")).toEqual(["old", "recent"]);
    expect(await names("start: -1h30m, stop: now()")).toEqual(["now-ish"]);
    const iso = new Date(START - 2 * day).toISOString();
    expect(await names(`start: ${iso}`)).toEqual(["recent", "now-ish"]);
    expect(await names(`start: "${iso}"`)).toEqual(["recent", "now-ish"]);
    expect(await names(`start: time(v: "${iso}"), stop: time(v: "${new Date(START - 1000).toISOString()}")`)).toEqual([
      "recent",
    ]);
  });

  it("unsupported Flux throws UnsupportedError naming the part", async () => {
    const s = await h.open();
    const cases: [string, RegExp][] = [
      ['from(bucket: "x") |> aggregateWindow(every: 1m)', /aggregateWindow\(\)/],
      ['from(bucket: "x") |> filter(fn: (r) => r.a == "1" or r.b == "2")', /"or"/],
      ['from(bucket: "x") |> filter(fn: (r) => r.a > 1)', /filter expression "r\.a > 1"/],
      ['from(bucket: "x") |> range(start: yesterday)', /range bound "yesterday"/],
      ['from(bucket: "x") |> range(every: 1m)', /range argument "every"/],
      ["from(host: 1)", /from\(host: 1\)/],
      ["not flux at all", /"not flux at all"/],
    ];
    for (const [q, message] of cases) {
      const err = await s.queryJournal(q).catch((e: unknown) => e);
      expect(err, q).toBeInstanceOf(UnsupportedError);
      expect((err as Error).message, q).toMatch(message);
    }
  });

  it("archived rows are excluded from empty and Flux queries but visible to SQL", async () => {
    const s = await h.open();
    await s.commitToJournal("a");
    h.clock.advance(10);
    await s.commitToJournal("b");
    await s.compact({ before: START + 5, output: `${archiveDir}/${h.engine}` });
    expect((await s.queryJournal()).map((r) => r.measurement)).toEqual(["b"]);
    expect((await s.queryJournal('from(bucket: "store")')).map((r) => r.measurement)).toEqual(["b"]);
    const all = await s.queryJournal("SELECT measurement, archived_at FROM journal_entries ORDER BY entry_id");
    expect(all.map((r) => [r.measurement, r.archived_at === null])).toEqual([
      ["a", false],
      ["b", true],
    ]);
  });
});
