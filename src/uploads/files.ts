import type { Executor } from "../sql/index.js";
import type { ClaimStore } from "./claim-store.js";
import type { DeleteQueue } from "./delete-queue.js";
import { extractFileKeys, type FileFields } from "./file-refs.js";
import { identityUrlKeyMapper, type UrlKeyMapper } from "./url-key-mapper.js";

/** Options of {@link Files}. */
export interface FilesOptions {
  claims: ClaimStore;
  queue: DeleteQueue;
  /** The model's file-reference fields, e.g. `{ avatar: "file", gallery: "files", body: "richtext" }`. */
  fields: FileFields;
  /** Maps URLs in rich text / markdown to keys. Default {@link identityUrlKeyMapper}. */
  urlMapper?: UrlKeyMapper;
}

/** The transaction every {@link Files} method runs in: your business transaction's `tx`. */
export interface FilesCallOptions {
  executor: Executor;
}

/**
 * Keeps uploaded files in step with the business rows that reference them, inside the
 * business transaction: `onCreate` adopts the referenced uploads (consuming their claims, so
 * they are never swept), `onUpdate` adopts newly referenced keys and queues dropped ones for
 * deletion (`replaced`), `onDelete` queues every referenced key (`deleted`). A key without an
 * uploaded claim owned by `owner` -> {@link ClaimNotFoundError}: roll the transaction back.
 * A null or undefined model is a no-op.
 *
 * @example
 * ```ts
 * const postFiles = new Files({ claims, queue, fields: { cover: "file", body: "markdown" }, urlMapper: proxyUrlKeyMapper() });
 * await db.transaction(async (tx) => {
 *   await tx.run("INSERT INTO posts (id, cover, body) VALUES ($1, $2, $3)", [post.id, post.cover, post.body]);
 *   await postFiles.onCreate(userId, post, { executor: tx });
 * });
 * ```
 */
export class Files<T = unknown> {
  readonly #claims: ClaimStore;
  readonly #queue: DeleteQueue;
  readonly #fields: FileFields;
  readonly #mapper: UrlKeyMapper;

  constructor(options: FilesOptions) {
    this.#claims = options.claims;
    this.#queue = options.queue;
    this.#fields = Object.freeze({ ...options.fields });
    this.#mapper = options.urlMapper ?? identityUrlKeyMapper;
  }

  /** The distinct keys `model` references. A field of the wrong type -> {@link InvalidArgumentError}. */
  async keysOf(model: T | null | undefined): Promise<string[]> {
    return extractFileKeys(model, this.#fields, this.#mapper);
  }

  /** Adopts every key `model` references. */
  async onCreate(owner: string, model: T | null | undefined, options: FilesCallOptions): Promise<void> {
    await this.#claims.consumeMany(await this.keysOf(model), owner, { executor: options.executor });
  }

  /** Adopts keys only `after` references and queues keys only `before` referenced (reason `replaced`). */
  async onUpdate(
    owner: string,
    before: T | null | undefined,
    after: T | null | undefined,
    options: FilesCallOptions,
  ): Promise<void> {
    const old = new Set(await this.keysOf(before));
    const next = new Set(await this.keysOf(after));
    await this.#claims.consumeMany(
      [...next].filter((k) => !old.has(k)),
      owner,
      { executor: options.executor },
    );
    await this.#queue.schedule(
      [...old].filter((k) => !next.has(k)),
      "replaced",
      { executor: options.executor, owner },
    );
  }

  /** Queues every key `model` references for deletion (reason `deleted`). */
  async onDelete(model: T | null | undefined, options: FilesCallOptions): Promise<void> {
    await this.#queue.schedule(await this.keysOf(model), "deleted", { executor: options.executor });
  }
}
