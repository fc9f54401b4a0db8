import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll } from "vitest";
import { createServer, type ServerOptions, type StoreroomServer } from "../../src/server/index.js";

/** Tokens written into the data dir before the server starts. */
export const tokens = {
  operator: "operator-token-0123456789",
  acmeAdmin: "acme-admin-token-0123456789",
  acme: "acme-org-token-0123456789",
  ada: "acme-ada-token-0123456789",
  bob: "acme-bob-token-0123456789",
  globex: "globex-org-token-0123456789",
} as const;

export const auth = (token: string) => ({ authorization: `Bearer ${token}` });

/** A server on `dataDir` with the fixture tokens; closed (and asserted flushed) after the file. */
export async function startServer(dataDir: string, config: ServerOptions = {}): Promise<StoreroomServer> {
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(
    join(dataDir, "tokens.json"),
    JSON.stringify({
      tokens: [
        { token: tokens.operator, orgId: "ops", roles: ["operator"] },
        { token: tokens.acmeAdmin, orgId: "acme", roles: ["admin"] },
        { token: tokens.acme, orgId: "acme" },
        { token: tokens.ada, orgId: "acme", userId: "ada" },
        { token: tokens.bob, orgId: "acme", userId: "bob" },
        { token: tokens.globex, orgId: "globex" },
      ],
    }),
  );
  const server = await createServer({ dataDir, port: 0, ...config });
  afterAll(async () => {
    const report = await server.close();
    if (!report.flushed) throw new Error(`server did not flush: ${report.errors.join("; ")}`);
  });
  return server;
}
