import type {
  CompletedPart,
  ListOptions,
  ListPage,
  ObjectBody,
  ObjectBodyInput,
  ObjectInfo,
  ObjectStore,
  PutOptions,
} from "../objects/index.js";

/**
 * A view of an object store under a fixed key prefix (`"tenants/"`, `"files/"`), so tenant
 * databases and uploaded files share one bucket without a tenant named `pub` ever being
 * reachable through the download route. Keys seen by callers never include the prefix.
 * `close()` leaves the underlying store open (its owner closes it).
 */
export class PrefixedObjectStore implements ObjectStore {
  readonly #inner: ObjectStore;
  readonly #prefix: string;

  /** `prefix` must end with `/`. */
  constructor(inner: ObjectStore, prefix: string) {
    this.#inner = inner;
    this.#prefix = prefix;
  }

  get partSize(): number {
    return this.#inner.partSize;
  }

  get maxPartCount(): number {
    return this.#inner.maxPartCount;
  }

  async get(key: string): Promise<ObjectBody | null> {
    const body = await this.#inner.get(this.#prefix + key);
    return body === null ? null : Object.assign(body, { key });
  }

  async head(key: string): Promise<ObjectInfo | null> {
    const info = await this.#inner.head(this.#prefix + key);
    return info === null ? null : { ...info, key };
  }

  async put(key: string, body: ObjectBodyInput, options?: PutOptions): Promise<{ etag: string }> {
    return this.#inner.put(this.#prefix + key, body, options);
  }

  async delete(key: string): Promise<void> {
    return this.#inner.delete(this.#prefix + key);
  }

  async list(prefix: string, options?: ListOptions): Promise<ListPage> {
    const page = await this.#inner.list(this.#prefix + prefix, options);
    const objects = page.objects.map((o) => ({ ...o, key: o.key.slice(this.#prefix.length) }));
    return page.cursor === undefined ? { objects } : { objects, cursor: page.cursor };
  }

  async initMultipart(key: string, options?: { contentType?: string }): Promise<string> {
    return this.#inner.initMultipart(this.#prefix + key, options);
  }

  async putPart(
    key: string,
    uploadId: string,
    partNumber: number,
    body: ObjectBodyInput,
    options?: { contentLength?: number },
  ): Promise<{ etag: string; size: number }> {
    return this.#inner.putPart(this.#prefix + key, uploadId, partNumber, body, options);
  }

  async completeMultipart(key: string, uploadId: string, parts: readonly CompletedPart[]): Promise<ObjectInfo> {
    const info = await this.#inner.completeMultipart(this.#prefix + key, uploadId, parts);
    return { ...info, key };
  }

  async abortMultipart(key: string, uploadId: string): Promise<void> {
    return this.#inner.abortMultipart(this.#prefix + key, uploadId);
  }

  async close(): Promise<void> {}
}
