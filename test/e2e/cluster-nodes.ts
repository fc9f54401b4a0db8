import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type ServeProcess, startServe } from "./serve-process.js";

/** Tokens every node of a test cluster accepts (written into each node's data directory). */
export const clusterTokens = {
  acme: "acme-cluster-token-00000",
  ada: "ada-cluster-token-000000",
  globex: "globex-cluster-token-000",
  initech: "initech-cluster-token-00",
  ops: "ops-cluster-token-000000",
} as const;

export const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

/** The bus secret every node is given. */
export const clusterBusSecret = "cluster-bus-secret-".padEnd(40, "x");

/** Writes the shared tokens file into `dataDir`. */
export function writeClusterTokens(dataDir: string): void {
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(
    join(dataDir, "tokens.json"),
    JSON.stringify({
      tokens: [
        { token: clusterTokens.acme, orgId: "acme", roles: ["admin"] },
        { token: clusterTokens.ada, orgId: "acme", userId: "ada" },
        { token: clusterTokens.globex, orgId: "globex" },
        { token: clusterTokens.initech, orgId: "initech" },
        { token: clusterTokens.ops, orgId: "ops", roles: ["operator"] },
      ],
    }),
  );
}

/** Starts one node of a cluster on `database` and `objects` with its own data directory. */
export async function startNode(
  dataDir: string,
  shared: { database: string; objects: string; leaseMs: number; extra?: string[]; noTokensFile?: boolean },
): Promise<ServeProcess> {
  if (shared.noTokensFile === true) mkdirSync(dataDir, { recursive: true });
  else writeClusterTokens(dataDir);
  return startServe([
    "--data",
    dataDir,
    "--database",
    shared.database,
    "--objects",
    shared.objects,
    "--durability",
    "sync",
    "--lease-ms",
    String(shared.leaseMs),
    "--bus-hmac-secret",
    clusterBusSecret,
    ...(shared.extra ?? []),
  ]);
}

/** Polls `check` until it returns a value other than `undefined`, or fails after `ms`. */
export async function until<T>(what: string, check: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** PUTs `value` at `key` through `url`; resolves with the HTTP status (0 when the connection failed). */
export async function put(url: string, token: string, key: string, value: string): Promise<number> {
  return (await putVia(url, token, key, value)).status;
}

/** Like {@link put}, also naming the node that answered (the owner's id, when the request was forwarded). */
export async function putVia(url: string, token: string, key: string, value: string) {
  try {
    const res = await fetch(`${url}/v1/state/notes/${key}`, {
      method: "PUT",
      headers: bearer(token),
      body: value,
      signal: AbortSignal.timeout(15_000),
    });
    await res.arrayBuffer();
    return { key, value, status: res.status, node: res.headers.get("x-storeroom-node") ?? "" };
  } catch {
    return { key, value, status: 0, node: "" };
  }
}

/** GETs `key` through `url`: its value, or `undefined` on any other answer. */
export async function get(url: string, token: string, key: string): Promise<string | undefined> {
  const res = await fetch(`${url}/v1/state/notes/${key}`, {
    headers: bearer(token),
    signal: AbortSignal.timeout(15_000),
  });
  const body = await res.text();
  return res.status === 200 ? body : undefined;
}
