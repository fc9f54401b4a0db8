import { ClosedError } from "../errors.js";

/** Something opened per tenant and closed when it leaves the cache. */
export interface Closable {
  close(): Promise<void>;
}

interface Entry<S> {
  state: Promise<S>;
  /** Open event streams; an entry with streams is never evicted (its watchers would end). */
  streams: number;
  /** Operations running on it ({@link TenantStateCache.use}); an entry is closed only once they ended. */
  busy: number;
  /** Called when `busy` drops to 0. */
  idle: (() => void)[];
  /** Used since the last {@link TenantStateCache.forEachRecent} pass. */
  recent: boolean;
}

/**
 * One state store per tenant, kept in an LRU so watchers (SSE) see every write the server
 * makes for that tenant. The state stores sit on the tenant store's per-call views, so the
 * tenant's SQLite handle is evicted and re-hydrated underneath them independently; this cache
 * only bounds how many state stores (event hubs) exist.
 *
 * Why at most one state store per tenant at a time, the old one closed only after its last
 * operation: the server's state stores do not poll the change log (every write of a tenant goes
 * through its one store here, which delivers it at once). A successor opened while its
 * predecessor still committed a write would start after that write's version was read and never
 * deliver it; so a store leaving the cache is closed once its operations ended, and the tenant's
 * next store opens only after that close.
 */
export class TenantStateCache<S extends Closable> {
  readonly #capacity: number;
  readonly #entries = new Map<string, Entry<S>>();
  /** Closes in progress of stores that left the cache, by tenant: the tenant's next store waits for it. */
  readonly #closing = new Map<string, Promise<void>>();
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

  /** Runs `fn` on the tenant's state store (built by `open` on first use), which stays open and cached until `fn` settles. */
  async use<T>(tenantId: string, open: () => Promise<S>, fn: (state: S) => Promise<T>): Promise<T> {
    const entry = this.#entry(tenantId, open);
    entry.busy += 1;
    try {
      return await fn(await entry.state);
    } finally {
      this.#done(entry);
    }
  }

  /** The tenant's state store, kept cached until the returned `release` is called. */
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
      if (!entry.recent || this.#entries.get(id) !== entry) continue;
      entry.recent = false;
      entry.busy += 1;
      try {
        await fn(await entry.state, id);
        done += 1;
      } catch {
        failed += 1;
      } finally {
        this.#done(entry);
      }
    }
    return { done, failed };
  }

  /** Forgets one tenant's state store and closes it once its operations ended, streams or not (its watchers end). */
  async drop(tenantId: string): Promise<void> {
    const entry = this.#entries.get(tenantId);
    if (entry === undefined) return;
    this.#entries.delete(tenantId);
    await this.#retire(tenantId, entry);
  }

  /** Closes every cached state store once its operations ended (their watchers end). */
  async close(): Promise<void> {
    this.#closed = true;
    const entries = [...this.#entries];
    this.#entries.clear();
    await Promise.all([...entries.map(([id, e]) => this.#retire(id, e)), ...this.#closing.values()]);
  }

  #entry(tenantId: string, open: () => Promise<S>): Entry<S> {
    let entry = this.#entries.get(tenantId);
    if (entry !== undefined) {
      this.#entries.delete(tenantId);
    } else {
      if (this.#closed) throw new ClosedError("the server is shutting down", { op: "server.state" });
      const previous = this.#closing.get(tenantId);
      const state = previous === undefined ? open() : previous.then(open);
      const created: Entry<S> = { state, streams: 0, busy: 0, idle: [], recent: true };
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
      if (entry.streams > 0 || entry.busy > 0 || id === keep) continue;
      this.#entries.delete(id);
      void this.#retire(id, entry);
    }
  }

  #done(entry: Entry<S>): void {
    entry.busy -= 1;
    if (entry.busy === 0) for (const fn of entry.idle.splice(0)) fn();
    this.#trim(undefined);
  }

  /** Closes an entry that left the cache once its operations ended; the tenant's next store opens after. */
  #retire(tenantId: string, entry: Entry<S>): Promise<void> {
    const idle = entry.busy === 0 ? Promise.resolve() : new Promise<void>((resolve) => entry.idle.push(resolve));
    const before = this.#closing.get(tenantId) ?? Promise.resolve();
    const closed = Promise.all([before, idle]).then(() => closeQuietly(entry.state));
    this.#closing.set(tenantId, closed);
    void closed.then(() => {
      if (this.#closing.get(tenantId) === closed) this.#closing.delete(tenantId);
    });
    return closed;
  }
}

async function closeQuietly(state: Promise<Closable>): Promise<void> {
  try {
    await (await state).close();
  } catch {
    // A state store that failed to open has nothing to release, and close() is idempotent.
  }
}
