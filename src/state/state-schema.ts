import { columnNames, type Executor, MigrationSet, tableExists } from "../sql/index.js";

async function columnExists(tx: Executor, table: string, column: string): Promise<boolean> {
  return (await columnNames(tx, table)).includes(column);
}

/**
 * Creates `entries`, or upgrades older layouts found in place: an `entries` table
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

/**
 * Versioned writes: every entry carries the version of its last change (existing rows start at
 * 1), `state_version` holds the store's version, and `state_changes` keeps recent changes for
 * event streams to resume from. `pruned_through` is the highest version no longer in the log.
 */
async function createVersions(tx: Executor): Promise<void> {
  const int = tx.dialect.bigintType;
  await tx.run(`ALTER TABLE entries ADD COLUMN entry_version ${int} NOT NULL DEFAULT 1`);
  await tx.run(`CREATE TABLE state_version (
    id INTEGER PRIMARY KEY,
    version ${int} NOT NULL,
    pruned_through ${int} NOT NULL
  )`);
  await tx.run("INSERT INTO state_version (id, version, pruned_through) VALUES (1, 1, 1)");
  await tx.run(`CREATE TABLE state_changes (
    version ${int} PRIMARY KEY,
    change_type TEXT NOT NULL,
    group_name TEXT NOT NULL,
    entry_key TEXT NOT NULL,
    entry_value TEXT,
    changed_at ${int} NOT NULL
  )`);
  await tx.run("CREATE INDEX state_changes_changed_at ON state_changes (changed_at)");
}

/**
 * The store version now comes from the newest change in the log (writes no longer update
 * `state_version`, which keeps the floor for an empty log and `pruned_through`), and pruning
 * finds its boundary by version, so the timestamp index every write paid for goes.
 */
async function versionFromChangeLog(tx: Executor): Promise<void> {
  await tx.run("UPDATE state_version SET version = COALESCE((SELECT MAX(version) FROM state_changes), version)");
  await tx.run("DROP INDEX IF EXISTS state_changes_changed_at");
}

/** The `state` module's forward-only migrations. */
export const stateMigrations = new MigrationSet("state")
  .add({ id: "state/001-entries", up: createEntries })
  .add({ id: "state/002-journal", up: createJournal })
  .add({ id: "state/003-versions", up: createVersions })
  .add({ id: "state/004-version-from-change-log", up: versionFromChangeLog });
