import { ClosedError } from "../errors.js";

/** Something opened per tenant and closed when it leaves the cache. */
export interface Closable {
  close(): Promise<void>;
}

interface Entry<S> {
  state: Promise<S>;
  /** Open event streams; an entry with streams is never evicted (its watchers would end). */
  streams: number;
  /** Used since the last {@link TenantStateCache.forEachRecent} pass. */
  recent: boolean;
}

/**
 * One state store per tenant, kept in an LRU so watchers (SSE) see every write the server
 * makes for that tenant. The state stores sit on the tenant store's per-call views, so the
 * tenant's SQLite handle is evicted and re-hydrated underneath them independently; this cache
 * only bounds how many state stores (event hubs) exist.
 */
export class TenantStateCache<S extends Closable> {
  readonly #capacity: number;
  readonly #entries = new Map<string, Entry<S>>();
  #closed = false;

  /** `capacity` bounds the entries without open streams (>= 1). */
  constructor(capacity: number) {
    this.#capacity = Math.max(1, capacity);
  }

  /** Number of cached state stores. */
  get size(): number {
    return this.#entries.size;
  }

  /** Tenant ids with a cached state store, least recently used first. */
  ids(): string[] {
    return [...this.#entries.keys()];
  }

  /** The tenant's state store, built by `open` on first use. */
  async get(tenantId: string, open: () => Promise<S>): Promise<S> {
    return this.#entry(tenantId, open).state;
  }

  /** Like {@link get}, and keeps the entry cached until the returned `release` is called. */
  async pin(tenantId: string, open: () => Promise<S>): Promise<{ state: S; release: () => void }> {
    const entry = this.#entry(tenantId, open);
    entry.streams += 1;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      entry.streams -= 1;
      this.#trim(undefined);
    };
    try {
      return { state: await entry.state, release };
    } catch (err) {
      release();
      throw err;
    }
  }

  /** Runs `fn` on every state store used since the previous pass (e.g. the state purge). */
  async forEachRecent(fn: (state: S, tenantId: string) => Promise<void>): Promise<{ done: number; failed: number }> {
    let done = 0;
    let failed = 0;
    for (const [id, entry] of [...this.#entries]) {
      if (!entry.recent) continue;
      entry.recent = false;
      try {
        await fn(await entry.state, id);
        done += 1;
      } catch {
        failed += 1;
      }
    }
    return { done, failed };
  }

  /** Forgets one tenant's state store and closes it, streams or not (its watchers end). */
  async drop(tenantId: string): Promise<void> {
    const entry = this.#entries.get(tenantId);
    if (entry === undefined) return;
    this.#entries.delete(tenantId);
    await closeQuietly(entry.state);
  }

  /** Closes every cached state store (their watchers end). */
  async close(): Promise<void> {
    this.#closed = true;
    const entries = [...this.#entries.values()];
    this.#entries.clear();
    await Promise.all(entries.map((e) => closeQuietly(e.state)));
  }

  #entry(tenantId: string, open: () => Promise<S>): Entry<S> {
    let entry = this.#entries.get(tenantId);
    if (entry !== undefined) {
      this.#entries.delete(tenantId);
    } else {
      if (this.#closed) throw new ClosedError("the server is shutting down", { op: "server.state" });
      const state = open();
      const created: Entry<S> = { state, streams: 0, recent: true };
      entry = created;
      state.catch(() => {
        if (this.#entries.get(tenantId) === created) this.#entries.delete(tenantId);
      });
    }
    entry.recent = true;
    this.#entries.set(tenantId, entry);
    this.#trim(tenantId);
    return entry;
  }

  #trim(keep: string | undefined): void {
    if (this.#entries.size <= this.#capacity) return;
    for (const [id, entry] of this.#entries) {
      if (this.#entries.size <= this.#capacity) break;
      if (entry.streams > 0 || id === keep) continue;
      this.#entries.delete(id);
      void closeQuietly(entry.state);
    }
  }
}

async function closeQuietly(state: Promise<Closable>): Promise<void> {
  try {
    await (await state).close();
  } catch {
    // A state store that failed to open has nothing to release, and close() is idempotent.
  }
}
