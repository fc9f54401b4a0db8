import { type Executor, MigrationSet } from "../sql/index.js";

async function tableExists(tx: Executor, table: string): Promise<boolean> {
  const row =
    tx.dialect.name === "sqlite"
      ? await tx.get("SELECT name FROM sqlite_master WHERE type = 'table' AND name = $1", [table])
      : await tx.get(
          "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1",
          [table],
        );
  return row !== undefined;
}

async function columnExists(tx: Executor, table: string, column: string): Promise<boolean> {
  if (tx.dialect.name === "sqlite") {
    const cols = await tx.all<{ name: string }>(`PRAGMA table_info(${table})`);
    return cols.some((c) => c.name === column);
  }
  const row = await tx.get(
    "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2",
    [table, column],
  );
  return row !== undefined;
}

/**
 * Creates `entries`, or upgrades the seed's older layouts found in place: an `entries` table
 * without `expires_at` gets the column, and a legacy `kv(grp, key, value[, expires_at])` table
 * is copied over (existing `entries` rows win) and dropped.
 */
async function createEntries(tx: Executor): Promise<void> {
  const int = tx.dialect.bigintType;
  if (await tableExists(tx, "entries")) {
    if (!(await columnExists(tx, "entries", "expires_at"))) {
      await tx.run(`ALTER TABLE entries ADD COLUMN expires_at ${int}`);
    }
  } else {
    await tx.run(`CREATE TABLE entries (
      group_name TEXT NOT NULL,
      entry_key TEXT NOT NULL,
      entry_value TEXT NOT NULL,
      expires_at ${int},
      PRIMARY KEY (group_name, entry_key)
    )`);
  }
  if (await tableExists(tx, "kv")) {
    const expiry = (await columnExists(tx, "kv", "expires_at")) ? "expires_at" : "NULL";
    await tx.run(
      `INSERT INTO entries (group_name, entry_key, entry_value, expires_at)
       SELECT grp, key, value, ${expiry} FROM kv WHERE true
       ON CONFLICT (group_name, entry_key) DO NOTHING`,
    );
    await tx.run("DROP TABLE kv");
  }
  await tx.run("CREATE INDEX IF NOT EXISTS entries_expires_at ON entries (expires_at) WHERE expires_at IS NOT NULL");
}

async function createJournal(tx: Executor): Promise<void> {
  const int = tx.dialect.bigintType;
  await tx.run(`CREATE TABLE IF NOT EXISTS journal_entries (
    entry_id ${tx.dialect.serialPrimaryKey},
    bucket_name TEXT NOT NULL,
    measurement TEXT NOT NULL,
    fields_json TEXT NOT NULL,
    tags_json TEXT NOT NULL,
    committed_at ${int} NOT NULL,
    archived_at ${int}
  )`);
  await tx.run("CREATE INDEX IF NOT EXISTS journal_bucket_committed_at ON journal_entries (bucket_name, committed_at)");
}

/** The `state` module's forward-only migrations. */
export const stateMigrations = new MigrationSet("state")
  .add({ id: "state/001-entries", up: createEntries })
  .add({ id: "state/002-journal", up: createJournal });
