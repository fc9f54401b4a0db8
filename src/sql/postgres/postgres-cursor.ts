import type { IterateOptions, SqlParams } from "../executor.js";
import { type PgClient, query } from "./postgres-client.js";

/**
 * Streams a query through a server-side cursor (`DECLARE ... CURSOR`, `FETCH n`) on a client
 * that is already inside a transaction. The cursor is closed when iteration ends or is broken
 * off.
 */
export async function* iterateWithCursor<T>(
  client: PgClient,
  cursor: string,
  sql: string,
  params: SqlParams | undefined,
  options: IterateOptions = {},
): AsyncIterableIterator<T> {
  const batch = Math.max(1, Math.floor(options.batchSize ?? 256));
  await query(client, `DECLARE ${cursor} NO SCROLL CURSOR FOR ${sql}`, params, "sql.iterate", false);
  try {
    for (;;) {
      const { rows } = await query<T>(client, `FETCH ${batch} FROM ${cursor}`, undefined, "sql.iterate");
      yield* rows;
      if (rows.length < batch) return;
    }
  } finally {
    await query(client, `CLOSE ${cursor}`, undefined, "sql.iterate");
  }
}
