import type { Executor } from "../sql/index.js";
import { MigrationSet } from "../sql/index.js";

async function createLeases(tx: Executor): Promise<void> {
  // expires_at 0 marks a released lease; the row stays so epochs only ever grow.
  await tx.run(`CREATE TABLE storeroom_tenant_leases (
    tenant TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    address TEXT NOT NULL,
    epoch ${tx.dialect.bigintType} NOT NULL,
    expires_at ${tx.dialect.bigintType} NOT NULL,
    acquired_at ${tx.dialect.bigintType} NOT NULL
  )`);
  await tx.run("CREATE INDEX storeroom_tenant_leases_holder ON storeroom_tenant_leases (holder, expires_at)");
}

/** The tenants module's tables in a shared control database: one ownership lease per tenant ({@link TenantLeases}). */
export const tenantsMigrations: MigrationSet = new MigrationSet("tenants").add({
  id: "tenants/001-leases",
  up: createLeases,
});
