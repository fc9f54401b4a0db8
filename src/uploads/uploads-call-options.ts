import type { ExecutorOptions } from "../sql/index.js";

/**
 * Options of the store methods that business code calls inside its own transaction (the
 * transactional-outbox pattern): pass the `tx` of your transaction as `executor` and the
 * change commits or rolls back together with your business write.
 *
 * @example
 * ```ts
 * await db.transaction(async (tx) => {
 *   await tx.run("INSERT INTO posts (id, cover) VALUES ($1, $2)", [id, key]);
 *   await claims.consumeMany([key], userId, { executor: tx });
 * });
 * ```
 */
export interface UploadsCallOptions extends ExecutorOptions {}
