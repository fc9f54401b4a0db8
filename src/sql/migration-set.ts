import { DuplicateMigrationError, InvalidArgumentError } from "../errors.js";
import type { Executor } from "./executor.js";

/**
 * One forward-only schema change. `up` runs inside a transaction that also writes the
 * migration's record, so a migration is applied entirely or not at all.
 */
export interface Migration<TTx = Executor> {
  /** Unique within its set; prefix it with the owning module, e.g. `"state/001-entries"`. Never rename an applied id. */
  readonly id: string;
  /** Applies the change through the transaction it is given. */
  up(tx: TTx): Promise<void>;
}

/**
 * An ordered, append-only list of migrations. The position of a migration in the set is its
 * ordinal; once applied, a migration must keep its ordinal forever.
 *
 * Sets are scoped by `name` (default `"default"`): ordinals are checked per set, so several
 * stores can migrate one database with their own sets.
 *
 * @example
 * ```ts
 * const set = new MigrationSet("notes")
 *   .add({ id: "notes/001-table", up: (tx) => tx.run("CREATE TABLE notes (id TEXT PRIMARY KEY)").then(() => {}) })
 *   .add({ id: "notes/002-body", up: async (tx) => { await tx.run("ALTER TABLE notes ADD body TEXT"); } });
 * await db.migrate(set);
 * ```
 */
export class MigrationSet<TTx = Executor> {
  /** The scope of the ordinals; records of other sets are ignored when this set is checked. */
  readonly name: string;
  readonly #migrations: Migration<TTx>[] = [];
  readonly #ids = new Set<string>();

  constructor(name = "default") {
    if (name.length === 0) throw new InvalidArgumentError("a migration set needs a non-empty name");
    this.name = name;
  }

  /**
   * Appends a migration and returns the set, so calls chain. Throws
   * {@link DuplicateMigrationError} for a repeated id and {@link InvalidArgumentError} for an
   * empty id or a missing `up`; the set is unchanged then.
   */
  add(migration: Migration<TTx>): this {
    if (typeof migration?.id !== "string" || migration.id.length === 0) {
      throw new InvalidArgumentError("a migration needs a non-empty id");
    }
    if (typeof migration.up !== "function") {
      throw new InvalidArgumentError(`migration "${migration.id}" has no up function`);
    }
    if (this.#ids.has(migration.id)) {
      throw new DuplicateMigrationError(`migration "${migration.id}" was added twice to set "${this.name}"`);
    }
    this.#ids.add(migration.id);
    this.#migrations.push(Object.freeze({ id: migration.id, up: migration.up }));
    return this;
  }

  /** Appends every migration of `other`, in its order. Throws like {@link MigrationSet.add}; on a duplicate nothing is appended. */
  extend(other: MigrationSet<TTx>): this {
    for (const m of other.list()) {
      if (this.#ids.has(m.id)) {
        throw new DuplicateMigrationError(`migration "${m.id}" was added twice to set "${this.name}"`);
      }
    }
    for (const m of other.list()) this.add(m);
    return this;
  }

  /** Number of migrations in the set. */
  get size(): number {
    return this.#migrations.length;
  }

  /** The migrations in ordinal order (a copy). */
  list(): readonly Migration<TTx>[] {
    return [...this.#migrations];
  }
}
