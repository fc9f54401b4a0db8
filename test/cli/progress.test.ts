import { execFile } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { AuditLog } from "../../src/bus/audit-log.js";
import { startProgress, wantsProgress } from "../../src/cli/progress.js";
import { openSqlite } from "../../src/sql/index.js";
import { useTempDir } from "../support/temp-dir.js";

const MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));

/** A stand-in for process.stderr that records what is written. */
function fakeStream(isTTY: boolean) {
  const stream = {
    isTTY,
    columns: 80,
    written: "",
    write(chunk: string | Uint8Array, ...rest: unknown[]) {
      stream.written += String(chunk);
      const cb = rest.find((r) => typeof r === "function") as (() => void) | undefined;
      cb?.();
      return true;
    },
    on: () => stream,
    once: () => stream,
    removeListener: () => stream,
  };
  return stream;
}

describe("progress bars", () => {
  const dir = useTempDir("storeroom-progress-");

  it("are wanted only on a terminal and never with --json", () => {
    expect(wantsProgress({ isTTY: true }, {})).toBe(true);
    expect(wantsProgress({ isTTY: true }, { json: false })).toBe(true);
    expect(wantsProgress({ isTTY: true }, { json: true })).toBe(false);
    expect(wantsProgress({ isTTY: false }, {})).toBe(false);
    expect(wantsProgress({}, {})).toBe(false);
  });

  it("draw on a terminal stream and write nothing to a pipe or with --json", async () => {
    const tty = fakeStream(true);
    const bar = await startProgress("rows", {}, tty as unknown as NodeJS.WriteStream);
    expect(bar).toBeDefined();
    bar?.update(1, 4);
    bar?.update(4, 4);
    bar?.stop();
    bar?.stop();
    expect(tty.written).toContain("4/4 rows");

    const counter = fakeStream(true);
    const count = await startProgress("objects", {}, counter as unknown as NodeJS.WriteStream);
    count?.update(1000);
    count?.update(1500);
    count?.stop();
    expect(counter.written).toContain("1500 objects");

    for (const [stream, opts] of [
      [fakeStream(false), {}],
      [fakeStream(true), { json: true }],
    ] as const) {
      expect(await startProgress("rows", opts, stream as unknown as NodeJS.WriteStream)).toBeUndefined();
      expect(stream.written).toBe("");
    }
  });

  it("a real CLI run with stderr on a pipe prints no progress (audit verify)", { timeout: 60_000 }, async () => {
    const path = join(dir, "bus.db");
    const db = await openSqlite(path);
    const audit = await AuditLog.open({ database: db });
    await audit.appendMany(Array.from({ length: 50 }, (_, i) => Buffer.from(`{"id":"m${i}"}`)));
    await db.close();
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [
      "--import",
      "tsx",
      MAIN,
      "audit",
      "verify",
      "--db",
      path,
    ]);
    expect(stdout).toBe("audit chain intact: 50 rows\n");
    expect(stderr).toBe("");
  });
});
