import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { Command } from "commander";
import { describe, expect, it, vi } from "vitest";
import { buildProgram } from "../../src/cli/program.js";
import { useTempDir } from "../support/temp-dir.js";

const main = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
const run = promisify(execFile);

/** Runs the CLI in this process (fast); usage errors would exit the process, so tests pass valid usage here. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const out = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, "write").mockImplementation((chunk) => {
    stderr += String(chunk);
    return true;
  });
  process.exitCode = undefined;
  try {
    await buildProgram().parseAsync(["node", "storeroom", ...args]);
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = undefined;
  return { code, stdout, stderr };
}

/** Runs the real CLI as a child process. */
async function spawnCli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ["--import", "tsx", main, ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe("cli: storeroom state | journal | compact", () => {
  const dir = useTempDir("storeroom-state-cli-");
  const db = join(dir, "state.db");

  it("set, get, ls, render and delete with --json", async () => {
    expect((await cli("state", "set", "user", "name", "Ada", "--db", db, "--json")).stdout).toBe(
      '{"group":"user","key":"name","value":"Ada","ttlMs":null}\n',
    );
    await cli("state", "set", "user", "lang", "en", "--ttl", "3600000", "--db", db);
    expect(JSON.parse((await cli("state", "get", "user", "name", "--db", db, "--json")).stdout)).toEqual({
      group: "user",
      key: "name",
      value: "Ada",
    });
    expect((await cli("state", "get", "user", "name", "--db", db)).stdout).toBe("Ada\n");
    expect(JSON.parse((await cli("state", "ls", "--db", db, "--json")).stdout)).toEqual({
      groups: [{ group: "user", keys: 2 }],
    });
    expect(JSON.parse((await cli("state", "ls", "user", "--db", db, "--json")).stdout)).toEqual({
      group: "user",
      entries: [
        { key: "lang", value: "en" },
        { key: "name", value: "Ada" },
      ],
    });
    // With a group, --prefix selects keys.
    expect(JSON.parse((await cli("state", "ls", "user", "--prefix", "na", "--db", db, "--json")).stdout)).toEqual({
      group: "user",
      entries: [{ key: "name", value: "Ada" }],
    });
    expect((await cli("state", "ls", "user", "--prefix", "x", "--db", db)).stdout).toBe("");
    expect((await cli("state", "render", "Hi {{ .name }} {{ .x }}", "user", "--db", db)).stdout).toBe(
      "Hi Ada <no value>\n",
    );
    expect(JSON.parse((await cli("state", "delete", "user", "--db", db, "--json")).stdout)).toEqual({
      group: "user",
      key: null,
      deleted: true,
      entries: 2,
    });
  });

  it("delete prints the documented shape and exits 1 when nothing was deleted; set and render exit 0", async () => {
    await cli("state", "set", "d", "k", "v", "--db", db);
    const deleted = await cli("state", "delete", "d", "k", "--db", db, "--json");
    expect({ code: deleted.code, json: JSON.parse(deleted.stdout) }).toEqual({
      code: 0,
      json: { group: "d", key: "k", deleted: true },
    });
    const again = await cli("state", "delete", "d", "k", "--db", db, "--json");
    expect({ code: again.code, json: JSON.parse(again.stdout) }).toEqual({
      code: 1,
      json: { group: "d", key: "k", deleted: false },
    });
    const text = await cli("state", "delete", "d", "k", "--db", db);
    expect([text.code, text.stderr]).toEqual([1, "not found: d/k\n"]);
    const group = await cli("state", "delete", "no-such-group", "--db", db, "--json");
    expect({ code: group.code, json: JSON.parse(group.stdout) }).toEqual({
      code: 1,
      json: { group: "no-such-group", key: null, deleted: false, entries: 0 },
    });
    expect((await cli("state", "render", "{{ .x }}", "no-such-group", "--db", db)).code).toBe(0);
    expect((await cli("state", "ls", "no-such-group", "--db", db)).code).toBe(0);
    expect((await cli("state", "set", "d", "k", "v", "--db", db)).code).toBe(0);
  });

  it("commands that only read never create the database file", async () => {
    const missing = join(dir, "missing.db");
    for (const args of [
      ["state", "get", "g", "k"],
      ["state", "ls"],
      ["state", "render", "x", "g"],
      ["state", "delete", "g", "k"],
      ["journal", "query"],
      ["compact", "--before", "1"],
    ]) {
      const run = await cli(...args, "--db", missing, "--json");
      expect(run.code, args.join(" ")).toBe(2);
      expect(JSON.parse(run.stdout).error.code, args.join(" ")).toBe("NOT_FOUND");
      expect(existsSync(missing), args.join(" ")).toBe(false);
    }
    expect((await cli("state", "set", "g", "k", "v", "--db", missing)).code).toBe(0);
    expect(existsSync(missing)).toBe(true);
  });

  it("a missing key exits 1; bad input exits 2 with the error", async () => {
    const missing = await cli("state", "get", "nope", "k", "--db", db, "--json");
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.stdout)).toEqual({ group: "nope", key: "k", found: false });
    const bad = await cli("state", "render", "{{ .oops", "g", "--db", db, "--json");
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stdout).error.code).toBe("INVALID_ARGUMENT");
    const ttl = await cli("state", "set", "g", "k", "v", "--ttl", "soon", "--db", db);
    expect(ttl.code).toBe(2);
    expect(ttl.stderr).toBe(`storeroom: --ttl must be a positive integer (milliseconds), got "soon"\n`);
  });

  it("as a real process: exit codes 1 (not found) and 2 (usage error)", { timeout: 60_000 }, async () => {
    expect((await cli("state", "set", "p", "k", "v", "--db", db)).code).toBe(0);
    const missing = await spawnCli("state", "get", "p", "other", "--db", db);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe("not found: p/other\n");
    const usage = await spawnCli("state", "get", "g", "k");
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^storeroom: required option '--db <path>' not specified\n/);
  });

  it("as a real process: a missing argument, a mistyped flag and an unknown command each say so, as storeroom: ...", {
    timeout: 60_000,
  }, async () => {
    const cases: [string[], string][] = [
      [["state", "get", "g", "--db", db], "storeroom: missing required argument 'key'"],
      [["state", "get", "g", "k", "--dbb", db], "storeroom: unknown option '--dbb'"],
      [["state", "get", "g"], "storeroom: missing required argument 'key'"],
      [["state", "nope"], "storeroom: unknown command 'nope'"],
    ];
    const runs = await Promise.all(cases.map(([args]) => spawnCli(...args)));
    runs.forEach((run, i) => {
      const [args, first] = cases[i] as [string[], string];
      expect(run.code, args.join(" ")).toBe(2);
      expect(run.stderr.split("\n")[0], args.join(" ")).toBe(first);
      expect(run.stderr, args.join(" ")).not.toMatch(/^error:/m);
    });
  });

  it("journal query and compact", async () => {
    const { StateStore } = await import("../../src/state/index.js");
    const s = await StateStore.open({ databasePath: db });
    await s.commitToJournal("sessions", { n: 1 }, { host: "a" });
    await s.close();
    const rows = JSON.parse(
      (await cli("journal", "query", 'from(bucket: "store") |> filter(fn: (r) => r.host == "a")', "--db", db, "--json"))
        .stdout,
    ).rows;
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ measurement: "sessions", fields: { n: 1 } });
    const unsupported = await cli("journal", "query", 'from(bucket: "x") |> pivot()', "--db", db);
    expect(unsupported.code).toBe(2);
    expect(unsupported.stderr).toMatch(/unsupported Flux: the function pivot\(\)/);
    const res = JSON.parse(
      (await cli("compact", "--db", db, "--before", new Date(Date.now() + 60_000).toISOString(), "--json")).stdout,
    );
    expect(res.rows).toBe(1);
    expect(dirname(res.path)).toBe(join(dir, "archive")); // the default: archive/ beside the database
    expect(existsSync(res.path)).toBe(true);
    expect(JSON.parse((await cli("journal", "query", "--db", db, "--json")).stdout)).toEqual({ rows: [] });
  });

  it("every command has --help with an example and --json", () => {
    const program = buildProgram();
    const find = (path: string[]): Command | undefined =>
      path.reduce<Command | undefined>((cmd, name) => cmd?.commands.find((c) => c.name() === name), program);
    for (const path of [
      ["state", "get"],
      ["state", "set"],
      ["state", "delete"],
      ["state", "ls"],
      ["state", "render"],
      ["journal", "query"],
      ["compact"],
    ]) {
      const cmd = find(path);
      expect(cmd, path.join(" ")).toBeDefined();
      let help = "";
      cmd?.configureOutput({ writeOut: (s) => (help += s) });
      cmd?.outputHelp();
      expect(help, path.join(" ")).toMatch(/Example/);
      expect(help, path.join(" ")).toMatch(/storeroom /);
      expect(help, path.join(" ")).toMatch(/--json/);
    }
  });
});
