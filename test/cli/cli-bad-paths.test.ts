import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { Command } from "commander";
import { describe, expect, it } from "vitest";
import { registerAudit } from "../../src/cli/commands/audit.js";
import { registerCompact } from "../../src/cli/commands/compact.js";
import { registerDemo } from "../../src/cli/commands/demo.js";
import { registerMigrate } from "../../src/cli/commands/migrate.js";
import { registerState } from "../../src/cli/commands/state.js";
import { registerTenants } from "../../src/cli/commands/tenants.js";
import { registerTokens } from "../../src/cli/commands/tokens.js";
import { registerUploads } from "../../src/cli/commands/uploads.js";
import { hasPostgres, postgresUrl } from "../support/postgres.js";
import { runCommand } from "../support/run-command.js";
import { useTempDir } from "../support/temp-dir.js";

const built = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));
const execFileAsync = promisify(execFile);

/** Runs the built CLI as a child process: the real exit code and stderr. */
async function spawnBuilt(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [built, ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe("cli: a wrong path is refused by name and nothing is created", () => {
  const dir = useTempDir("storeroom-cli-paths-");
  const junk = join(dir, "notes.txt");
  const folder = join(dir, "folder");
  writeFileSync(junk, "not a database at all\n");
  mkdirSync(folder);

  const dbCommands: [(program: Command) => void, string[]][] = [
    [registerState, ["state", "get", "g", "k"]],
    [registerState, ["state", "set", "g", "k", "v"]],
    [registerCompact, ["compact", "--before", "1"]],
    [registerAudit, ["audit", "verify"]],
    [registerUploads, ["uploads", "sweep", "--objects", dir]],
    [registerDemo, ["demo"]],
  ];

  it("a --db that is a directory or not a SQLite file names the flag and the path; the file is untouched", async () => {
    for (const [register, args] of dbCommands) {
      const dirRun = await runCommand(register, [...args, "--db", folder]);
      expect([dirRun.code, dirRun.stderr], args.join(" ")).toEqual([
        2,
        expect.stringContaining(`--db ${folder} is a directory, not a SQLite database file`),
      ]);
      const junkRun = await runCommand(register, [...args, "--db", junk]);
      expect([junkRun.code, junkRun.stderr], args.join(" ")).toEqual([
        2,
        expect.stringContaining(`--db ${junk} is not a SQLite database`),
      ]);
    }
    const migrate = await runCommand(registerMigrate, ["migrate", "--database", junk]);
    expect([migrate.code, migrate.stderr]).toEqual([2, expect.stringContaining(`--database ${junk} is not a SQLite`)]);
    expect(readdirSync(folder)).toEqual([]);
  });

  it("state commands print storeroom: <message> on stderr also with --json, beside the JSON error line", async () => {
    const run = await runCommand(registerState, ["state", "get", "g", "k", "--db", junk, "--json"]);
    expect(run.code).toBe(2);
    expect(JSON.parse(run.stdout)).toEqual({
      error: { code: "INVALID_ARGUMENT", message: `--db ${junk} is not a SQLite database` },
    });
    expect(run.stderr).toBe(`storeroom: --db ${junk} is not a SQLite database\n`);
  });

  it("state set refuses a --ttl that is not a positive whole number before creating the database", async () => {
    const db = join(dir, "ttl.db");
    for (const ttl of ["soon", "1.5", "-5", "0"]) {
      const run = await runCommand(registerState, ["state", "set", "g", "k", "v", "--ttl", ttl, "--db", db]);
      expect([run.code, run.stderr], ttl).toEqual([
        2,
        `storeroom: --ttl must be a positive integer (milliseconds), got ${JSON.stringify(ttl)}\n`,
      ]);
    }
    expect(existsSync(db)).toBe(false);
    const ok = await runCommand(registerState, ["state", "set", "g", "k", "v", "--ttl", "60000", "--db", db, "--json"]);
    expect([ok.code, JSON.parse(ok.stdout)]).toEqual([0, { group: "g", key: "k", value: "v", ttlMs: 60000 }]);
  });

  it("audit names a SQLite file without a bus audit log and a missing key or checkpoint file", async () => {
    const db = join(dir, "state.db");
    expect((await runCommand(registerState, ["state", "set", "g", "k", "v", "--db", db])).code).toBe(0);
    const verify = await runCommand(registerAudit, ["audit", "verify", "--db", db, "--json"]);
    expect([verify.code, verify.stderr]).toEqual([2, `no bus audit log in ${db} (no bus_audit table)`]);
    const key = join(dir, "missing.key");
    const sign = await runCommand(registerAudit, ["audit", "checkpoint", "--db", db, "--private-key", key]);
    expect([sign.code, sign.stderr]).toEqual([2, `--private-key ${key}: no such file`]);
    const cp = await runCommand(registerAudit, [
      "audit",
      "verify",
      "--db",
      db,
      "--checkpoint",
      junk,
      "--public-key",
      junk,
    ]);
    expect([cp.code, cp.stderr]).toEqual([2, `--checkpoint ${junk}: checkpoint is not JSON`]);
  });

  it("tenants commands that read refuse a missing --objects or --cache directory and create none", async () => {
    const objects = join(dir, "objects");
    mkdirSync(objects, { recursive: true });
    const nowhere = join(dir, "nowhere");
    const cases: string[][] = [
      ["ls", "--objects", nowhere],
      ["ls", "--objects", `file://${nowhere}`],
      ["inspect", "acme/org", "--objects", nowhere],
      ["history", "acme/org", "--objects", nowhere],
      ["restore", "acme/org", "--at", "1", "--to", join(dir, "r.db"), "--objects", nowhere],
    ];
    for (const args of cases) {
      const run = await runCommand(registerTenants, ["tenants", ...args]);
      expect([run.code, run.stderr], args.join(" ")).toEqual([2, `--objects: no directory at ${nowhere}`]);
    }
    for (const args of [
      ["ls", "--objects", objects, "--cache", nowhere],
      ["inspect", "acme/org", "--objects", objects, "--cache", nowhere],
      ["conflicts", "--cache", nowhere],
      ["checkpoint", "--objects", objects, "--cache", nowhere],
      ["evict", "acme/org", "--objects", objects, "--cache", nowhere],
    ]) {
      const run = await runCommand(registerTenants, ["tenants", ...args]);
      expect([run.code, run.stderr], args.join(" ")).toEqual([2, `--cache: no directory at ${nowhere}`]);
    }
    const file = await runCommand(registerTenants, ["tenants", "ls", "--objects", junk]);
    expect([file.code, file.stderr]).toEqual([2, `--objects ${junk} is not a directory`]);
    expect(existsSync(nowhere)).toBe(false);
  });

  it("uploads refuse a missing --objects directory", async () => {
    const db = join(dir, "control.db");
    expect((await runCommand(registerMigrate, ["migrate", "--database", db])).code).toBe(0);
    const nowhere = join(dir, "no-objects");
    const run = await runCommand(registerUploads, ["uploads", "drain", "--db", db, "--objects", nowhere, "--json"]);
    expect([run.code, run.stdout, run.stderr]).toEqual([2, "", `--objects: no directory at ${nowhere}`]);
    expect(existsSync(nowhere)).toBe(false);
  });

  it("uploads reconcile words a bad --limit or --min-age-ms as typed, before touching the database", async () => {
    const db = join(dir, "reconcile.db");
    expect((await runCommand(registerMigrate, ["migrate", "--database", db])).code).toBe(0);
    const query = ["--references-query", "SELECT 'x' AS key"];
    for (const [flag, value] of [
      ["--limit", "abc"],
      ["--limit", "0"],
      ["--min-age-ms", "-1"],
      ["--min-age-ms", "1.5"],
    ] as const) {
      const args = ["uploads", "reconcile", ...query, flag, value, "--db", db, "--objects", dir, "--json"];
      const run = await runCommand(registerUploads, args);
      expect([run.code, run.stdout, run.stderr], `${flag} ${value}`).toEqual([
        2,
        "",
        `${flag} must be a positive integer, got ${JSON.stringify(value)}`,
      ]);
    }
  });

  it("tokens ls and revoke need a tokens file and create no directory; a directory is refused", async () => {
    const data = join(dir, "no-data");
    for (const args of [["ls"], ["revoke", "abc"]]) {
      const run = await runCommand(registerTokens, ["tokens", ...args, "--data", data, "--json"]);
      expect([run.code, run.stdout, run.stderr], args.join(" ")).toEqual([
        2,
        "",
        `--data: no tokens file at ${join(data, "tokens.json")} (tokens add creates one)`,
      ]);
    }
    expect(existsSync(data)).toBe(false);
    const folderRun = await runCommand(registerTokens, ["tokens", "ls", "--file", folder]);
    expect([folderRun.code, folderRun.stderr]).toEqual([2, `--file: the tokens file ${folder} is a directory`]);
    const added = await runCommand(registerTokens, ["tokens", "add", "--org", "acme", "--data", data, "--json"]);
    expect(added.code).toBe(0);
    const listed = await runCommand(registerTokens, ["tokens", "ls", "--data", data, "--json"]);
    expect([listed.code, JSON.parse(listed.stdout).tokens.length]).toEqual([0, 1]);
  });

  it("tokens add refuses a bad org, user, role or expiry before creating any directory", async () => {
    const data = join(dir, "tokens-add-refused");
    const file = join(dir, "tokens-add-refused-file", "tokens.json");
    const cases = [
      ["--org", "Not An Org"],
      ["--org", "pub"],
      ["--org", "acme", "--user", "Ada Lovelace"],
      ["--org", "acme", "--role", "Bad Role"],
      ["--org", "acme", "--expires", "soon"],
      ["--org", "acme", "--label", "x".repeat(201)],
    ];
    for (const args of cases) {
      for (const where of [
        ["--data", data],
        ["--file", file],
      ]) {
        const run = await runCommand(registerTokens, ["tokens", "add", ...args, ...where, "--json"]);
        expect([run.code, run.stdout], args.join(" ")).toEqual([2, ""]);
        expect(run.stderr, args.join(" ")).not.toBe("");
      }
    }
    expect(existsSync(data)).toBe(false);
    expect(existsSync(join(dir, "tokens-add-refused-file"))).toBe(false);
  });

  it("migrate --json reports the absolute path and every control migration set", async () => {
    const run = await runCommand(registerMigrate, ["migrate", "--data", join(dir, "data"), "--json"]);
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout) as { database: string; sets: { set: string }[] };
    expect(out.database).toBe(join(dir, "data", "control.db"));
    expect(out.sets.map((s) => s.set)).toEqual(["uploads", "bus", "server", "tenants"]);
  });

  it.runIf(existsSync(built))(
    "as the built binary: exit 2 and storeroom: <message>, also with --json",
    { timeout: 60_000 },
    async () => {
      const [state, tenants] = await Promise.all([
        spawnBuilt("state", "ls", "--db", folder, "--json"),
        spawnBuilt("tenants", "ls", "--objects", join(dir, "absent"), "--json"),
      ]);
      expect([state.code, state.stderr]).toEqual([
        2,
        `storeroom: --db ${folder} is a directory, not a SQLite database file\n`,
      ]);
      expect([tenants.code, tenants.stdout, tenants.stderr]).toEqual([
        2,
        "",
        `storeroom: --objects: no directory at ${join(dir, "absent")}\n`,
      ]);
    },
  );

  it.runIf(hasPostgres && existsSync(built))(
    "a PostgreSQL URL with a wrong password fails at once, exit 2, the password never printed",
    { timeout: 60_000 },
    async () => {
      const url = new URL(postgresUrl);
      url.password = "wrong-Pa55word";
      const runs = await Promise.all([
        spawnBuilt("audit", "verify", "--db", url.toString(), "--json"),
        spawnBuilt("uploads", "sweep", "--db", url.toString(), "--objects", dir),
        spawnBuilt("migrate", "--database", url.toString(), "--json"),
      ]);
      for (const run of runs) {
        expect(run.code).toBe(2);
        expect(run.stdout).toBe("");
        expect(run.stderr).toMatch(/^storeroom: .*password authentication failed/);
        expect(run.stdout + run.stderr).not.toContain("wrong-Pa55word");
      }
    },
  );
});
