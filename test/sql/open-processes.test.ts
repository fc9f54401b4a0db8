import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterEach, describe, expect, it } from "vitest";
import { openSqlite } from "../../src/sql/index.js";
import { availableSqliteEngines } from "../support/sqlite-engines.js";
import { useTempDir } from "../support/temp-dir.js";

const child = new URL("./fixtures/open-child.ts", import.meta.url).pathname;
const PROCESSES = 6;
const ROUNDS = 40;

/** A child process answering one line per line it is sent. */
interface Opener {
  proc: ChildProcessWithoutNullStreams;
  next(): Promise<string>;
}

function startOpener(engine: string): Opener {
  const proc = spawn(process.execPath, ["--import", "tsx", child, engine]);
  const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
  return {
    proc,
    next: async () => {
      const line = await lines.next();
      if (line.done) throw new Error("the opener exited");
      return line.value;
    },
  };
}

describe.each(availableSqliteEngines())("several processes opening a new file at once (%s)", (engine) => {
  const dir = useTempDir();
  const openers: Opener[] = [];
  afterEach(() => {
    for (const o of openers.splice(0)) o.proc.kill();
  });

  it(`every open succeeds and the file ends in WAL (${PROCESSES} processes, ${ROUNDS} new files)`, async () => {
    for (let i = 0; i < PROCESSES; i++) openers.push(startOpener(engine));
    expect(await Promise.all(openers.map((o) => o.next()))).toEqual(Array(PROCESSES).fill("ready"));
    const answers: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const path = join(dir, `fresh-${round}.db`);
      for (const o of openers) o.proc.stdin.write(`${path}\n`);
      answers.push(...(await Promise.all(openers.map((o) => o.next()))));
      const db = await openSqlite(path, { engine });
      const mode = await db.get<{ journal_mode: string }>("PRAGMA journal_mode");
      await db.close();
      expect(mode?.journal_mode).toBe("wal");
    }
    expect(answers.filter((a) => a !== "ok")).toEqual([]);
    expect(answers).toHaveLength(PROCESSES * ROUNDS);
  });
});
