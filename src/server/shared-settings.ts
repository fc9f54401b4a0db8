import type { Clock } from "../clock.js";
import type { Database } from "../sql/index.js";

/** A shared setting's value and how many times it changed. */
export interface SharedSetting {
  readonly value: string;
  readonly version: number;
}

/**
 * Named values every node on one control database shares (`storeroom_shared_settings`): the
 * bus HMAC secret, the internal forwarding secret, the tokens file. Each change bumps the
 * row's version, so a node notices a change by reading one number.
 */
export class SharedSettings {
  readonly #db: Database;
  readonly #clock: Clock;

  constructor(options: { database: Database; clock: Clock }) {
    this.#db = options.database;
    this.#clock = options.clock;
  }

  /** The setting, or `undefined` when it was never written. */
  async get(name: string): Promise<SharedSetting | undefined> {
    const row = await this.#db.get<{ value: string; version: number | string }>(
      "SELECT value, version FROM storeroom_shared_settings WHERE name = $1",
      [name],
    );
    // Version 0 is the placeholder an update that wrote nothing leaves behind.
    return row === undefined || Number(row.version) === 0
      ? undefined
      : { value: row.value, version: Number(row.version) };
  }

  /** The setting's version (0 when it was never written): cheap to poll. */
  async version(name: string): Promise<number> {
    const row = await this.#db.get<{ version: number | string }>(
      "SELECT version FROM storeroom_shared_settings WHERE name = $1",
      [name],
    );
    return row === undefined ? 0 : Number(row.version);
  }

  /** Writes `value` unless the setting exists; returns the setting as stored (the first writer's value wins). */
  async createIfAbsent(name: string, value: string): Promise<SharedSetting> {
    await this.#db.run(
      `INSERT INTO storeroom_shared_settings (name, value, version, updated_at) VALUES ($1, $2, 1, $3)
       ON CONFLICT (name) DO UPDATE SET value = excluded.value, version = 1, updated_at = excluded.updated_at
       WHERE storeroom_shared_settings.version = 0`,
      [name, value, this.#clock.now()],
    );
    return (await this.get(name)) as SharedSetting;
  }

  /**
   * Read-modify-write under the row's lock: `change` gets the current value (`undefined` when
   * absent) and returns the new one, or `undefined` to leave it as it is. Concurrent updates
   * of one setting from any node are serialised. Returns the stored setting.
   */
  async update(
    name: string,
    change: (current: string | undefined) => string | undefined,
  ): Promise<SharedSetting | undefined> {
    return this.#db.transaction(async (tx) => {
      await tx.run(
        "INSERT INTO storeroom_shared_settings (name, value, version, updated_at) VALUES ($1, '', 0, 0) ON CONFLICT (name) DO NOTHING",
        [name],
      );
      const row = (await tx.get<{ value: string; version: number | string }>(
        `SELECT value, version FROM storeroom_shared_settings WHERE name = $1${tx.dialect.forUpdate}`,
        [name],
      )) as { value: string; version: number | string };
      const version = Number(row.version);
      const current = version === 0 ? undefined : row.value;
      const next = change(current);
      if (next === undefined) return current === undefined ? undefined : { value: current, version };
      await tx.run("UPDATE storeroom_shared_settings SET value = $2, version = $3, updated_at = $4 WHERE name = $1", [
        name,
        next,
        version + 1,
        this.#clock.now(),
      ]);
      return { value: next, version: version + 1 };
    });
  }
}
