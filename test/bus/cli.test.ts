import { spawn } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { AuditLog } from "../../src/bus/audit-log.js";
import { registerAudit } from "../../src/cli/commands/audit.js";
import { resolveBusServeOptions } from "../../src/cli/commands/bus.js";
import { openSqlite } from "../../src/sql/index.js";
import { runCommand } from "../support/run-command.js";
import { useTempDir } from "../support/temp-dir.js";
import { RawPeer, SECRET } from "./bus-fixtures.js";

const dir = useTempDir("storeroom-bus-cli-");
const main = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));

function cli(args: string[]) {
  return runCommand(registerAudit, args);
}

async function auditDb(name: string, rows: number): Promise<string> {
  const path = join(dir, `${name}.db`);
  const db = await openSqlite(path);
  const audit = await AuditLog.open({ database: db });
  for (let i = 0; i < rows; i++) await audit.append(Buffer.from(`{"event":"send","id":"m${i}"}`));
  await db.close();
  return path;
}

async function sql(path: string, statement: string): Promise<void> {
  const db = await openSqlite(path);
  await db.run(statement);
  await db.close();
}

describe("storeroom audit", () => {
  it("verify exits 0 when intact, 1 with the break, 2 on an operational error", async () => {
    const intact = await auditDb("intact", 5);
    const tampered = await auditDb("tampered", 5);
    await sql(tampered, "UPDATE bus_audit SET event = x'00' WHERE seq = 3");
    const ok = await cli(["audit", "verify", "--db", intact]);
    const okJson = await cli(["audit", "verify", "--db", intact, "--json"]);
    const broken = await cli(["audit", "verify", "--db", tampered]);
    const brokenJson = await cli(["audit", "verify", "--db", tampered, "--json"]);
    const missing = await cli(["audit", "verify", "--db", join(dir, "nope.db")]);
    expect(ok).toMatchObject({ code: 0, stdout: "audit chain intact: 5 rows\n" });
    expect(JSON.parse(okJson.stdout)).toEqual({ intact: true, rows: 5 });
    expect(broken.code).toBe(1);
    expect(broken.stdout).toMatch(/BROKEN at index 3 \(seq 3\): .*tampered/);
    expect(JSON.parse(brokenJson.stdout)).toMatchObject({ intact: false, rows: 5, break: { index: 3, seq: 3 } });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no database/);
  });

  it("checkpoint signs the head; verify with it catches truncation", async () => {
    const path = await auditDb("cp", 6);
    const keys = generateKeyPairSync("ed25519");
    const priv = join(dir, "audit.key");
    const pub = join(dir, "audit.pub");
    writeFileSync(priv, keys.privateKey.export({ type: "pkcs8", format: "pem" }));
    writeFileSync(pub, keys.publicKey.export({ type: "spki", format: "pem" }));
    const cp = join(dir, "cp.json");
    expect((await cli(["audit", "checkpoint", "--db", path, "--private-key", priv, "--out", cp])).code).toBe(0);
    const before = await cli(["audit", "verify", "--db", path, "--checkpoint", cp, "--public-key", pub]);
    expect(before.code).toBe(0);
    await sql(path, "DELETE FROM bus_audit WHERE seq >= 4");
    const after = await cli(["audit", "verify", "--db", path, "--checkpoint", cp, "--public-key", pub, "--json"]);
    const plain = await cli(["audit", "verify", "--db", path]);
    const half = await cli(["audit", "verify", "--db", path, "--checkpoint", cp]);
    expect(after.code).toBe(1);
    expect(half.stderr).toMatch(/go together/);
    expect(JSON.parse(after.stdout).break.detail).toMatch(/truncated/);
    expect(plain.code).toBe(0);
    expect(half.code).toBe(2);
  });
});

describe("storeroom bus serve", () => {
  it("resolves flags over environment over defaults, and refuses weak config", () => {
    const env = { STOREROOM_BUS_TOKENS: "a, b", STOREROOM_BUS_HMAC_SECRET: SECRET, STOREROOM_BUS_DB: "/x.db" };
    expect(resolveBusServeOptions({}, env)).toEqual({
      host: "127.0.0.1",
      port: 47821,
      tokens: ["a", "b"],
      hmacSecret: SECRET,
      db: "/x.db",
      schema: undefined,
      ackedRetentionMs: 3_600_000,
    });
    expect(resolveBusServeOptions({ ackedRetentionMs: "0" }, env).ackedRetentionMs).toBe(0);
    expect(resolveBusServeOptions({}, { ...env, STOREROOM_BUS_ACKED_RETENTION_MS: "Infinity" }).ackedRetentionMs).toBe(
      Number.POSITIVE_INFINITY,
    );
    for (const bad of ["-1", "1h", "1.5", ""]) {
      expect(() => resolveBusServeOptions({ ackedRetentionMs: bad }, env)).toThrow(/^--acked-retention-ms must be/);
    }
    expect(resolveBusServeOptions({ listen: "[::1]:9", tokens: "c", db: "y.db" }, env)).toMatchObject({
      host: "::1",
      port: 9,
      tokens: ["c"],
      db: "y.db",
    });
    expect(() => resolveBusServeOptions({}, { ...env, STOREROOM_BUS_TOKENS: " , " })).toThrow(/token/);
    expect(() => resolveBusServeOptions({ hmacSecret: "short" }, env)).toThrow(/32 bytes/);
    expect(() => resolveBusServeOptions({ listen: "nohost" }, env)).toThrow(/HOST:PORT/);
  });

  it("serves peers until SIGTERM", async () => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", main, "bus", "serve", "--listen", "127.0.0.1:0", "--db", join(dir, "serve.db"), "--json"],
      { env: { ...process.env, STOREROOM_BUS_TOKENS: "tok", STOREROOM_BUS_HMAC_SECRET: SECRET } },
    );
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (c: Buffer) => {
        out += c.toString();
        if (out.includes("\n")) resolve((JSON.parse(out) as { listening: string }).listening);
      });
      child.once("exit", (code) => reject(new Error(`exited ${code}`)));
    });
    const peer = await RawPeer.register(url, "bob", "tok");
    expect(peer.frames[0]).toEqual({ type: "peers", names: ["bob"] });
    const exit = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    child.kill("SIGTERM");
    expect(await exit).toBe(0);
    expect((await peer.closed).code).toBe(1001);
  });
});
