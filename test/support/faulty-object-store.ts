import type {
  CompletedPart,
  CompleteMultipartOptions,
  GetOptions,
  ListOptions,
  ListPage,
  ObjectBody,
  ObjectBodyInput,
  ObjectInfo,
  ObjectStore,
  PutOptions,
} from "../../src/objects/object-store.js";

/** The ObjectStore calls a fault can target. */
export type ObjectStoreMethod =
  | "get"
  | "head"
  | "put"
  | "delete"
  | "list"
  | "initMultipart"
  | "putPart"
  | "completeMultipart"
  | "abortMultipart";

/** The error thrown by an injected fault unless the rule gives its own. */
export class InjectedFault extends Error {
  constructor(readonly method: ObjectStoreMethod) {
    super(`injected fault in ${method}`);
    this.name = "InjectedFault";
  }
}

/** How a fault behaves. */
export interface FaultOptions {
  /** How many matching calls fail. Default 1. `Infinity`: every one, until {@link FaultyObjectStore.clearFaults}. */
  times?: number;
  /**
   * `"before"` (default): the call fails without reaching the real store (nothing changes).
   * `"after"`: the real store performs the call, then the caller gets the error (a lost response).
   */
  when?: "before" | "after";
  /** Only calls whose first argument (the key, or the prefix for `list`) passes this fail. */
  match?: (key: string) => boolean;
  /** The error to throw. Default a new {@link InjectedFault}. */
  error?: () => unknown;
}

interface Rule extends Required<Omit<FaultOptions, "match" | "error">> {
  readonly method: ObjectStoreMethod;
  readonly match: ((key: string) => boolean) | undefined;
  readonly error: () => unknown;
}

/**
 * Wraps a real {@link ObjectStore} and makes chosen calls fail: test-only fault injection.
 * Every call is recorded in `calls` (method + key) whether it failed or not.
 *
 * @example
 * ```ts
 * const objects = new FaultyObjectStore(new MemoryObjectStore());
 * objects.failNext("put", { times: 2 });               // the next two puts throw InjectedFault
 * objects.failNext("completeMultipart", { when: "after" }); // completes, then reports failure
 * objects.failNext("delete", { times: Infinity });   // every delete fails until clearFaults()
 * ```
 */
export class FaultyObjectStore implements ObjectStore {
  /** Every call, in the order made (recorded on entry); `failed`: an injected fault failed it. */
  readonly calls: { method: ObjectStoreMethod; key: string; failed: boolean }[] = [];
  /**
   * Awaited before every call (after recording it, before any fault): lets a test pause a call
   * at a chosen point, e.g. hold a `put` until another writer has gone first.
   */
  beforeCall: ((method: ObjectStoreMethod, key: string) => void | Promise<void>) | undefined;
  /**
   * Bytes the real store holds from every `put` and `putPart` that reached it (the stored size,
   * read back right after each call): what a caller uploaded, counted outside the caller.
   */
  uploadedBytes = 0;
  readonly #inner: ObjectStore;
  #rules: Rule[] = [];

  constructor(inner: ObjectStore) {
    this.#inner = inner;
  }

  /** The wrapped store. */
  get inner(): ObjectStore {
    return this.#inner;
  }

  get partSize(): number {
    return this.#inner.partSize;
  }

  get maxPartCount(): number {
    return this.#inner.maxPartCount;
  }

  /**
   * Makes the next `times` matching calls of `method` fail (all of them with `times: Infinity`).
   * Rules queue up in order: a call meets the first armed rule that matches it.
   */
  failNext(method: ObjectStoreMethod, options: FaultOptions = {}): this {
    this.#rules.push({
      method,
      times: options.times ?? 1,
      when: options.when ?? "before",
      match: options.match,
      error: options.error ?? (() => new InjectedFault(method)),
    });
    return this;
  }

  /** Drops every pending fault. */
  clearFaults(): void {
    this.#rules = [];
  }

  /** Faults still armed (remaining failures over all rules; `Infinity` while a `times: Infinity` rule is). */
  get pendingFaults(): number {
    return this.#rules.reduce((sum, rule) => sum + rule.times, 0);
  }

  /** How many calls of `method` were made (failed ones included). */
  count(method: ObjectStoreMethod): number {
    return this.calls.filter((call) => call.method === method).length;
  }

  /**
   * How many calls of `method` (on `key`, if given) no injected fault failed. Only injected faults
   * count as failures: an error the real store itself throws does not, while a call failed by a
   * `when: "after"` fault does even though the real store performed it.
   */
  succeeded(method: ObjectStoreMethod, key?: string): number {
    return this.calls.filter(
      (call) => call.method === method && !call.failed && (key === undefined || call.key === key),
    ).length;
  }

  get(key: string, options?: GetOptions): Promise<ObjectBody | null> {
    return this.#call("get", key, () => this.#inner.get(key, options));
  }

  head(key: string): Promise<ObjectInfo | null> {
    return this.#call("head", key, () => this.#inner.head(key));
  }

  put(key: string, body: ObjectBodyInput, options?: PutOptions): Promise<{ etag: string }> {
    return this.#call("put", key, async () => {
      const result = await this.#inner.put(key, body, options);
      this.uploadedBytes += (await this.#inner.head(key))?.size ?? 0;
      return result;
    });
  }

  delete(key: string): Promise<void> {
    return this.#call("delete", key, () => this.#inner.delete(key));
  }

  list(prefix: string, options?: ListOptions): Promise<ListPage> {
    return this.#call("list", prefix, () => this.#inner.list(prefix, options));
  }

  initMultipart(key: string, options?: { contentType?: string }): Promise<string> {
    return this.#call("initMultipart", key, () => this.#inner.initMultipart(key, options));
  }

  putPart(
    key: string,
    uploadId: string,
    partNumber: number,
    body: ObjectBodyInput,
    options?: { contentLength?: number },
  ): Promise<{ etag: string; size: number }> {
    return this.#call("putPart", key, async () => {
      const result = await this.#inner.putPart(key, uploadId, partNumber, body, options);
      this.uploadedBytes += result.size;
      return result;
    });
  }

  completeMultipart(
    key: string,
    uploadId: string,
    parts: readonly CompletedPart[],
    options?: CompleteMultipartOptions,
  ): Promise<ObjectInfo> {
    return this.#call("completeMultipart", key, () => this.#inner.completeMultipart(key, uploadId, parts, options));
  }

  abortMultipart(key: string, uploadId: string): Promise<void> {
    return this.#call("abortMultipart", key, () => this.#inner.abortMultipart(key, uploadId));
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  async #call<T>(method: ObjectStoreMethod, key: string, run: () => Promise<T>): Promise<T> {
    const rule = this.#rules.find((r) => r.method === method && (r.match === undefined || r.match(key)));
    this.calls.push({ method, key, failed: rule !== undefined });
    if (rule) {
      rule.times -= 1;
      if (rule.times <= 0) this.#rules = this.#rules.filter((r) => r !== rule);
    }
    await this.beforeCall?.(method, key);
    if (!rule) return run();
    if (rule.when === "after") await run();
    throw rule.error();
  }
}
