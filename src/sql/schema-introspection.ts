import type { Executor } from "./executor.js";

/** True when `table` exists in the current schema. */
export async function tableExists(tx: Executor, table: string): Promise<boolean> {
  const query = tx.dialect.tableExists(table);
  return (await tx.get(query.sql, query.params)) !== undefined;
}

/** The column names of `table` (empty when it does not exist). */
export async function columnNames(tx: Executor, table: string): Promise<string[]> {
  const query = tx.dialect.columnNames(table);
  return (await tx.all<{ name: string }>(query.sql, query.params)).map((c) => c.name);
}
