import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { decompress as zstdDecompress } from "zstd-napi";
import { InvalidArgumentError } from "../../src/errors.js";
import { StateStore } from "../../src/state/index.js";
import { useTempDir } from "../support/temp-dir.js";
import { forEachEngine, START } from "./state-harness.js";

const dir = useTempDir("storeroom-compact-");
let n = 0;
const outDir = () => join(dir, `out-${n++}`);

function lines(buf: Buffer): unknown[] {
  return buf
    .toString("utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
}

forEachEngine("StateStore.compact", (h) => {
  it("writes due rows as gzip JSON lines in commit order and marks them archived", async () => {
    const s = await h.open();
    h.clock.set(START + 20);
    await s.commitToJournal("second", { n: 2 }, { t: "b" });
    h.clock.set(START + 10);
    await s.commitToJournal("first", { n: 1 }, { t: "a" });
    h.clock.set(START + 100);
    await s.commitToJournal("not-due");
    const output = outDir();
    const res = await s.compact({ before: START + 50, output });
    expect(res.rows).toBe(2);
    expect(res.path).toMatch(/journal-20260101-000000\.100000000\.jsonl\.gz$/);
    expect(lines(gunzipSync(readFileSync(res.path as string)))).toEqual([
      { bucket: "store", measurement: "first", fields: { n: 1 }, tags: { t: "a" }, committed_at: START + 10 },
      { bucket: "store", measurement: "second", fields: { n: 2 }, tags: { t: "b" }, committed_at: START + 20 },
    ]);
    expect((await s.queryJournal()).map((r) => r.measurement)).toEqual(["not-due"]);
    const marked = await s.queryJournal("SELECT archived_at FROM journal_entries WHERE archived_at IS NOT NULL");
    expect(marked.map((r) => Number(r.archived_at))).toEqual([START + 100, START + 100]);
    // No staging files are left behind.
    expect(readdirSync(output)).toEqual([res.path?.split("/").pop()]);
  });

  it("writes zstd archives any zstd decoder reads (decoded here with the native zstd-napi)", async () => {
    const s = await h.open();
    await s.commitToJournal("z", { v: "x".repeat(1000) });
    const res = await s.compact({ before: new Date(START + 1), output: outDir(), format: " ZSTD " });
    expect(res.path).toMatch(/\.jsonl\.zst$/);
    expect(lines(zstdDecompress(readFileSync(res.path as string)))).toEqual([
      { bucket: "store", measurement: "z", fields: { v: "x".repeat(1000) }, tags: {}, committed_at: START },
    ]);
  });

  it("with no due rows returns { path: null, rows: 0 } and writes no file", async () => {
    const s = await h.open();
    await s.commitToJournal("future");
    const output = outDir();
    expect(await s.compact({ before: START, output })).toEqual({ path: null, rows: 0 });
    expect(existsSync(output)).toBe(false);
  });

  it("a before time past any stored time archives every row on every engine; one before them all archives none", async () => {
    const s = await h.open();
    await s.commitToJournal("a");
    expect(await s.compact({ before: -1e300, output: outDir() })).toEqual({ path: null, rows: 0 });
    expect(await s.compact({ before: Number.MIN_SAFE_INTEGER - 2 ** 20, output: outDir() })).toMatchObject({ rows: 0 });
    expect(await s.compact({ before: 1e300, output: outDir() })).toMatchObject({ rows: 1 });
    await s.commitToJournal("b");
    expect(await s.compact({ before: Number.MAX_VALUE, output: outDir() })).toMatchObject({ rows: 1 });
    expect(await s.queryJournal()).toEqual([]);
  });

  it("already archived rows are never archived twice", async () => {
    const s = await h.open();
    await s.commitToJournal("a");
    const output = outDir();
    expect((await s.compact({ before: START + 1, output })).rows).toBe(1);
    h.clock.advance(1000);
    expect(await s.compact({ before: START + 1, output })).toEqual({ path: null, rows: 0 });
  });

  it("two compactions in the same millisecond get distinct files", async () => {
    const s = await h.open();
    const output = outDir();
    await s.commitToJournal("a");
    const first = await s.compact({ before: START + 1, output });
    await s.commitToJournal("b");
    const second = await s.compact({ before: START + 1, output });
    expect(first.path).not.toBe(second.path);
    expect(readdirSync(output)).toHaveLength(2);
  });

  it("if marking rows fails, the archive is removed and the rows stay unarchived", async () => {
    const db = await h.freshDatabase();
    const failing = new Proxy(db, {
      get(target, prop) {
        if (prop === "transaction") return () => Promise.reject(new Error("disk full"));
        const v = Reflect.get(target, prop);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const s = await h.openOn(failing);
    await s.commitToJournal("a");
    const output = outDir();
    await expect(s.compact({ before: START + 1, output })).rejects.toThrow("disk full");
    expect(readdirSync(output)).toEqual([]);
    expect((await s.queryJournal()).map((r) => r.measurement)).toEqual(["a"]);
  });

  it("reports progress per marked batch with the due total; the result is the same as without", async () => {
    const s = await h.open();
    for (let i = 0; i < 1200; i++) await s.commitToJournal("m", { i });
    const calls: [number, number | undefined][] = [];
    const res = await s.compact({ before: START + 1, output: outDir(), onProgress: (d, t) => calls.push([d, t]) });
    expect(res.rows).toBe(1200);
    expect(calls).toEqual([
      [500, 1200],
      [1000, 1200],
      [1200, 1200],
    ]);
    expect(await s.queryJournal()).toEqual([]);
    const none: number[] = [];
    expect(await s.compact({ before: START + 1, output: outDir(), onProgress: (d) => none.push(d) })).toEqual({
      path: null,
      rows: 0,
    });
    expect(none).toEqual([]);
  });
});

describe("compact options", () => {
  it("validates before and format; normalises format", async () => {
    const { normalizeCompactOptions } = await import("../../src/state/journal-compactor.js");
    expect(() => normalizeCompactOptions({ before: Number.NaN })).toThrow(InvalidArgumentError);
    expect(() => normalizeCompactOptions({} as never)).toThrow(/needs a before time/);
    expect(() => normalizeCompactOptions({ before: 1, format: "brotli" })).toThrow(/"gzip" or "zstd"/);
    expect(normalizeCompactOptions({ before: 1 })).toEqual({ before: 1, output: ".core/archive", format: "gzip" });
    // Only an absent output takes the default directory.
    for (const output of ["", "  ", 5]) {
      expect(() => normalizeCompactOptions({ before: 1, output: output as string })).toThrow(
        /^compact output must be a directory path/,
      );
    }
    expect(normalizeCompactOptions({ before: new Date(5), format: " Gzip", output: "/x" })).toEqual({
      before: 5,
      output: "/x",
      format: "gzip",
    });
  });
});

/** Every archived line in `output`, decoded. */
function archivedLines(output: string): { measurement: string; fields: { i?: number } }[] {
  return readdirSync(output)
    .filter((f) => f.endsWith(".jsonl.gz"))
    .flatMap((f) => lines(gunzipSync(readFileSync(join(output, f))))) as {
    measurement: string;
    fields: { i?: number };
  }[];
}

/** How often each measurement was archived, for the ones archived other than once. */
function notOnce(archived: { measurement: string }[], expected: string[]): Record<string, number> {
  const seen = new Map<string, number>(expected.map((m) => [m, 0]));
  for (const line of archived) seen.set(line.measurement, (seen.get(line.measurement) ?? 0) + 1);
  return Object.fromEntries([...seen].filter(([, n]) => n !== 1));
}

forEachEngine("StateStore.compact under concurrency", (h) => {
  it("compactions running at once archive every row exactly once", async () => {
    const s = await h.open();
    const expected: string[] = [];
    for (let i = 0; i < 50; i++) {
      expected.push(`m${i}`);
      await s.commitToJournal(`m${i}`, { i });
    }
    const output = outDir();
    const results = await Promise.all(Array.from({ length: 4 }, () => s.compact({ before: START + 1, output })));
    expect(results.reduce((sum, r) => sum + r.rows, 0)).toBe(50);
    expect(notOnce(archivedLines(output), expected)).toEqual({});
    expect(readdirSync(output).filter((f) => f.startsWith(".staging"))).toEqual([]);
    expect(await s.queryJournal()).toEqual([]);
  });

  it("compactions interleaved with new commits archive every row exactly once", async () => {
    const s = await h.open();
    const output = outDir();
    const expected: string[] = [];
    const writer = (async () => {
      for (let i = 0; i < 60; i++) {
        expected.push(`w${i}`);
        await s.commitToJournal(`w${i}`, { i });
      }
    })();
    const compactor = async () => {
      for (let round = 0; round < 6; round++) await s.compact({ before: START + 1, output });
    };
    await Promise.all([writer, compactor(), compactor(), compactor()]);
    await s.compact({ before: START + 1, output });
    expect(notOnce(archivedLines(output), expected)).toEqual({});
  });
});

describe("sqlite: compactions in two processes", () => {
  const root = useTempDir("storeroom-compact-procs-");
  const dist = fileURLToPath(new URL("../../dist/state/index.js", import.meta.url));

  it("archive every row exactly once", async () => {
    if (!existsSync(dist)) throw new Error("dist/state/index.js is missing: run `npm run build` (npm test does)");
    const path = join(root, "journal.db");
    const output = join(root, "archive");
    const setup = await StateStore.open({ databasePath: path });
    await setup.close();
    // Each child commits rows and compacts in turns; both compact the rows the other committed.
    const script = `import { StateStore } from ${JSON.stringify(dist)};
      const [path, output, name] = process.argv.slice(1);
      const s = await StateStore.open({ databasePath: path });
      for (let round = 0; round < 12; round++) {
        for (let i = 0; i < 10; i++) await s.commitToJournal(name + "-" + round + "-" + i, { i });
        await s.compact({ before: Date.now() + 60000, output });
      }
      await s.close();`;
    const run = (name: string) =>
      promisify(execFile)(process.execPath, ["--input-type=module", "-e", script, path, output, name], {
        timeout: 60_000,
      });
    await Promise.all([run("a"), run("b")]);
    const check = await StateStore.open({ databasePath: path });
    try {
      await check.compact({ before: Date.now() + 60_000, output });
      expect(await check.queryJournal()).toEqual([]);
    } finally {
      await check.close();
    }
    const expected = ["a", "b"].flatMap((name) =>
      Array.from({ length: 120 }, (_, n) => `${name}-${Math.floor(n / 10)}-${n % 10}`),
    );
    const archived = archivedLines(output);
    expect(archived).toHaveLength(240);
    expect(notOnce(archived, expected)).toEqual({});
  });
});
