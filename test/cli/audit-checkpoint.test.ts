import { generateKeyPairSync } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AuditLog, parseCheckpoint } from "../../src/bus/index.js";
import { registerAudit } from "../../src/cli/commands/audit.js";
import { openSqlite } from "../../src/sql/index.js";
import { runCommand } from "../support/run-command.js";
import { useTempDir } from "../support/temp-dir.js";

async function cli(args: string[]): Promise<{ code: number; stdout: string }> {
  const { code, stdout } = await runCommand(registerAudit, args);
  return { code, stdout };
}

describe("storeroom audit checkpoint --json", () => {
  const dir = useTempDir("storeroom-audit-cp-");

  it("prints {checkpoint, out, rows}; the checkpoint verifies against the log", async () => {
    const path = join(dir, "bus.db");
    const db = await openSqlite(path);
    const audit = await AuditLog.open({ database: db });
    await audit.appendMany(["a", "b", "c"].map((e) => Buffer.from(e)));
    await db.close();
    const keys = generateKeyPairSync("ed25519");
    const priv = join(dir, "audit.key");
    const pub = join(dir, "audit.pub");
    writeFileSync(priv, keys.privateKey.export({ type: "pkcs8", format: "pem" }));
    writeFileSync(pub, keys.publicKey.export({ type: "spki", format: "pem" }));

    const printed = await cli(["audit", "checkpoint", "--db", path, "--private-key", priv, "--json"]);
    expect(printed.code).toBe(0);
    const out = JSON.parse(printed.stdout) as { checkpoint: unknown; out: string | null; rows: number };
    expect(printed.stdout.trim().split("\n")).toHaveLength(1);
    expect(out).toMatchObject({ out: null, rows: 3, checkpoint: { seq: 2 } });
    const cp = parseCheckpoint(JSON.stringify(out.checkpoint));

    const file = join(dir, "cp.json");
    const written = await cli(["audit", "checkpoint", "--db", path, "--private-key", priv, "--out", file, "--json"]);
    expect(JSON.parse(written.stdout)).toEqual({ checkpoint: out.checkpoint, out: file, rows: 3 });
    expect(parseCheckpoint(readFileSync(file, "utf8"))).toEqual(cp);

    const verified = await cli(["audit", "verify", "--db", path, "--checkpoint", file, "--public-key", pub, "--json"]);
    expect(verified).toEqual({ code: 0, stdout: '{"intact":true,"rows":3}\n' });
  });
});
