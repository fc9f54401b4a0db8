import type { Database } from "../sql/index.js";

/** The part of the tenant store the server uses: a leased tenant database. */
export interface TenantLeaser<K> {
  /** Runs `fn` with the tenant's database; the handle is not evicted while `fn` runs. */
  withTenant<T>(key: K, fn: (db: Database) => Promise<T>): Promise<T>;
}

/** Something that must be closed with the tenant handle it was opened over. */
export interface Closable {
  close(): Promise<void>;
}

interface Entry<S> {
  db: Database;
  state: Promise<S>;
}

/**
 * One state store per resident tenant handle, so watchers (SSE) see every write made through
 * the server. A state store is reopened when the tenant store hands out a new handle (after an
 * eviction) and closed once its handle is closed (checked on every use and by `sweep()`).
 */
export class TenantStateCache<K extends { toString(): string }, S extends Closable> {
  readonly #tenants: TenantLeaser<K>;
  readonly #open: (db: Database) => Promise<S>;
  readonly #entries = new Map<string, Entry<S>>();

  constructor(tenants: TenantLeaser<K>, open: (db: Database) => Promise<S>) {
    this.#tenants = tenants;
    this.#open = open;
  }

  /** Runs `fn` with the tenant's state store while the tenant handle is leased. */
  async with<T>(key: K, fn: (state: S, db: Database) => Promise<T>): Promise<T> {
    return this.#tenants.withTenant(key, async (db) => fn(await this.#stateFor(key.toString(), db), db));
  }

  /** Number of cached state stores. */
  get size(): number {
    return this.#entries.size;
  }

  /** Closes the state stores whose tenant handle was closed (evicted). Returns how many. */
  async sweep(): Promise<number> {
    let closed = 0;
    for (const [id, entry] of this.#entries) {
      if (!entry.db.closed) continue;
      this.#entries.delete(id);
      await closeQuietly(entry.state);
      closed++;
    }
    return closed;
  }

  /** Closes every cached state store (watchers end). */
  async close(): Promise<void> {
    const entries = [...this.#entries.values()];
    this.#entries.clear();
    await Promise.all(entries.map((e) => closeQuietly(e.state)));
  }

  #stateFor(id: string, db: Database): Promise<S> {
    const entry = this.#entries.get(id);
    if (entry !== undefined && entry.db === db) return entry.state;
    if (entry !== undefined) void closeQuietly(entry.state);
    const state = this.#open(db);
    this.#entries.set(id, { db, state });
    state.catch(() => {
      if (this.#entries.get(id)?.state === state) this.#entries.delete(id);
    });
    return state;
  }
}

async function closeQuietly(state: Promise<Closable>): Promise<void> {
  try {
    await (await state).close();
  } catch {
    // A state store that failed to open or is already closed has nothing left to release.
  }
}
