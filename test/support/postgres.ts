import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, inject } from "vitest";

/** The server URL from the global setup, or "" when PostgreSQL is unavailable (never in CI). */
export const postgresUrl: string = inject("postgresUrl");

/** True when the PostgreSQL suites can run; `describe.runIf(hasPostgres)`. */
export const hasPostgres = postgresUrl !== "";

/** Connection URL of another database on the same server. */
export function databaseUrl(name: string): string {
  const url = new URL(postgresUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Creates an empty database and returns its URL. */
export async function createDatabase(prefix = "t"): Promise<{ name: string; url: string }> {
  const name = `${prefix}_${randomBytes(6).toString("hex")}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  return { name, url: databaseUrl(name) };
}

/** Drops a database made by {@link createDatabase}, disconnecting anyone still on it. */
export async function dropDatabase(name: string): Promise<void> {
  await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
}

/**
 * Gives the calling test file a fresh database, created before its tests and dropped after.
 * Call at the top of a `describe.runIf(hasPostgres)` block; read `.url` inside tests.
 */
export function useFreshPostgresDatabase(): { readonly url: string } {
  const handle = { url: "", name: "" };
  beforeAll(async () => {
    const db = await createDatabase();
    handle.url = db.url;
    handle.name = db.name;
  });
  afterAll(async () => {
    if (handle.name !== "") await dropDatabase(handle.name);
  });
  return handle;
}
