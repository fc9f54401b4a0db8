import type pg from "pg";
import { importOptional } from "../../internal/optional-dependency.js";
import type { SqlParams, SqlValue } from "../executor.js";
import { mapPostgresError } from "./postgres-errors.js";

/** The subset of a `pg` client or pool that storeroom uses. */
export interface PgQueryable {
  query(config: PgQueryConfig): Promise<{ rows: unknown[]; rowCount: number | null }>;
}

/** A checked-out `pg` client. */
export interface PgClient extends PgQueryable {
  release(err?: Error | boolean): void;
}

/** The subset of a `pg.Pool` that storeroom uses. */
export interface PgPool extends PgQueryable {
  connect(): Promise<PgClient>;
  end(): Promise<void>;
}

interface PgQueryConfig {
  text: string;
  values?: unknown[];
  name?: string;
  types?: { getTypeParser: (oid: number, format?: string) => unknown };
}

const INT8_OID = 20;

/** 64-bit integers come back as numbers when they fit (timestamps, counts), as bigint beyond 2^53. */
function parseInt8(text: string): number | bigint {
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : BigInt(text);
}

let driver: typeof pg | undefined;

/**
 * Loads `pg`, an optional package, on first use: installs that never touch PostgreSQL do not
 * need it. Every path to {@link query} goes through here first (`openPostgres`).
 */
export async function loadPg(): Promise<typeof pg> {
  driver ??= (await importOptional<{ default: typeof pg }>("pg", "PostgreSQL")).default;
  return driver;
}

const types = {
  getTypeParser(oid: number, format?: string): unknown {
    if (oid === INT8_OID && format !== "binary") return parseInt8;
    return (driver as typeof pg).types.getTypeParser(oid, format as "text");
  },
};

/** Creates a pool for a connection string, optionally with a default `search_path`. */
export async function createPool(
  connectionString: string,
  options: { schema?: string; max?: number },
): Promise<PgPool> {
  const pg = await loadPg();
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? 10,
    ...(options.schema === undefined ? {} : { options: `-c search_path=${options.schema}` }),
  });
  // An idle client dying (server restart, admin disconnect) is removed from the pool and the
  // next query opens a new one; without a listener the 'error' event would crash the process.
  pool.on("error", () => {});
  return pool as unknown as PgPool;
}

/**
 * Runs one statement. Parameterised statements are named, so each connection parses and
 * plans them once; statements without parameters go through the simple protocol, which also
 * accepts several statements separated by `;` (migrations).
 */
export async function query<T>(
  target: PgQueryable,
  sql: string,
  params: SqlParams | undefined,
  op: string,
  prepare = true,
): Promise<{ rows: T[]; rowCount: number }> {
  const config: PgQueryConfig = { text: sql, types };
  if (params !== undefined && params.length > 0) {
    const name = prepare ? statementName(sql) : undefined;
    if (name !== undefined) config.name = name;
    config.values = params.map(toPg);
  }
  try {
    const result = await target.query(config);
    return { rows: result.rows as T[], rowCount: result.rowCount ?? 0 };
  } catch (err) {
    throw mapPostgresError(err, op);
  }
}

/**
 * Names are global to the process: `pg` remembers prepared names per connection, and a pool
 * may be shared by several databases, so one text must always map to one name.
 */
const statementNames = new Map<string, string>();
/** Past this many distinct texts (dynamic SQL), new statements run unnamed instead of growing the map. */
const MAX_NAMED_STATEMENTS = 5000;

function statementName(sql: string): string | undefined {
  let name = statementNames.get(sql);
  if (name === undefined && statementNames.size < MAX_NAMED_STATEMENTS) {
    name = `storeroom_${statementNames.size}`;
    statementNames.set(sql, name);
  }
  return name;
}

function toPg(value: SqlValue): unknown {
  if (value instanceof Uint8Array && !Buffer.isBuffer(value)) {
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  }
  return typeof value === "bigint" ? value.toString() : value;
}
