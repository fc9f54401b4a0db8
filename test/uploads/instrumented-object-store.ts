import type {
  CompletedPart,
  CompleteMultipartOptions,
  ListOptions,
  ListPage,
  ObjectBody,
  ObjectBodyInput,
  ObjectInfo,
  ObjectStore,
  PutOptions,
} from "../../src/objects/object-store.js";

/** Calls recorded by {@link InstrumentedObjectStore}, in order. */
export type RecordedCall = { op: "delete" | "abortMultipart" | "completeMultipart" | "initMultipart"; key: string };

/**
 * Wraps a real {@link ObjectStore}: records deletes/aborts and injects faults
 * (`fail(op, key?) => Error | undefined` is consulted before each delegated call).
 */
export class InstrumentedObjectStore implements ObjectStore {
  readonly inner: ObjectStore;
  readonly calls: RecordedCall[] = [];
  readonly deletes = new Map<string, number>();
  fail: (op: string, key: string) => Error | undefined = () => undefined;
  /** Awaited before each delegated call (lets tests hold calls in flight or inspect state). */
  before: (op: string, key: string) => Promise<void> = async () => {};

  constructor(inner: ObjectStore) {
    this.inner = inner;
  }

  get partSize(): number {
    return this.inner.partSize;
  }

  get maxPartCount(): number {
    return this.inner.maxPartCount;
  }

  async #check(op: string, key: string): Promise<void> {
    await this.before(op, key);
    const err = this.fail(op, key);
    if (err !== undefined) throw err;
  }

  async get(key: string): Promise<ObjectBody | null> {
    await this.#check("get", key);
    return this.inner.get(key);
  }

  async head(key: string): Promise<ObjectInfo | null> {
    await this.#check("head", key);
    return this.inner.head(key);
  }

  async put(key: string, body: ObjectBodyInput, options?: PutOptions): Promise<{ etag: string }> {
    await this.#check("put", key);
    return this.inner.put(key, body, options);
  }

  async delete(key: string): Promise<void> {
    await this.#check("delete", key);
    this.calls.push({ op: "delete", key });
    this.deletes.set(key, (this.deletes.get(key) ?? 0) + 1);
    return this.inner.delete(key);
  }

  async list(prefix: string, options?: ListOptions): Promise<ListPage> {
    await this.#check("list", prefix);
    return this.inner.list(prefix, options);
  }

  async initMultipart(key: string, options?: { contentType?: string }): Promise<string> {
    await this.#check("initMultipart", key);
    this.calls.push({ op: "initMultipart", key });
    return this.inner.initMultipart(key, options);
  }

  async putPart(
    key: string,
    uploadId: string,
    partNumber: number,
    body: ObjectBodyInput,
    options?: { contentLength?: number },
  ): Promise<{ etag: string; size: number }> {
    await this.#check("putPart", key);
    return this.inner.putPart(key, uploadId, partNumber, body, options);
  }

  async completeMultipart(
    key: string,
    uploadId: string,
    parts: readonly CompletedPart[],
    options?: CompleteMultipartOptions,
  ): Promise<ObjectInfo> {
    await this.#check("completeMultipart", key);
    this.calls.push({ op: "completeMultipart", key });
    return this.inner.completeMultipart(key, uploadId, parts, options);
  }

  async abortMultipart(key: string, uploadId: string): Promise<void> {
    await this.#check("abortMultipart", key);
    this.calls.push({ op: "abortMultipart", key });
    return this.inner.abortMultipart(key, uploadId);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
