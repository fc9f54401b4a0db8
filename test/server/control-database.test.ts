import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  controlMigrationSets,
  migrateControlDatabase,
  openControlDatabase,
} from "../../src/server/control-database.js";
import { hasPostgres, useFreshPostgresDatabase } from "../support/postgres.js";
import { useTempDir } from "../support/temp-dir.js";

async function migrateTwice(target: string): Promise<void> {
  const db = await openControlDatabase(target);
  try {
    const first = await migrateControlDatabase(db);
    expect(first.map((r) => r.set)).toEqual(["uploads", "bus", "server", "tenants"]);
    for (const [i, r] of first.entries()) expect(r.result.applied.length).toBe(controlMigrationSets[i]?.size);
    const second = await migrateControlDatabase(db);
    for (const r of second) expect(r.result).toEqual({ applied: [], ahead: [] });
    const tables = await db.all<{ n: string }>(
      db.dialect.name === "sqlite"
        ? "SELECT name AS n FROM sqlite_master WHERE type = 'table'"
        : "SELECT table_name AS n FROM information_schema.tables WHERE table_schema = current_schema()",
    );
    const names = tables.map((t) => t.n);
    expect(names).toContain("bus_messages");
    expect(names).toContain("storeroom_upload_claims");
    expect(names).toContain("storeroom_bus_peer_names");
    expect(names).toEqual(
      expect.arrayContaining(["storeroom_nodes", "storeroom_shared_settings", "storeroom_tenant_leases"]),
    );
  } finally {
    await db.close();
  }
}

describe("control database", () => {
  const dir = useTempDir();
  it("migrates the uploads, bus, server and tenants sets on SQLite, creating the directory, idempotently", async () => {
    await migrateTwice(join(dir, "nested", "control.db"));
  });
});

describe.runIf(hasPostgres)("control database on PostgreSQL", () => {
  const pg = useFreshPostgresDatabase();
  it("migrates the uploads, bus, server and tenants sets, idempotently", async () => {
    await migrateTwice(pg.url);
  });
});
