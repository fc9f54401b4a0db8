import { resolve } from "node:path";
import type { Command } from "commander";
import { helpFooter } from "../help-footer.js";
import { ExitCode, printJson } from "../output.js";
import { type CliProgress, startProgress } from "../progress.js";

interface CommonOptions {
  objects: string;
  cache: string;
  json?: boolean;
}

type Tenants = import("../../tenants/index.js").TenantStore;
type Key = import("../../tenants/index.js").TenantKey;

/** Opens the object store and a TenantStore on the cache (which takes the cache lock: a running service makes this fail). */
async function withTenants<T>(opts: CommonOptions, fn: (tenants: Tenants) => Promise<T>, keepFiles = true): Promise<T> {
  const { openObjectStore } = await import("../../objects/index.js");
  const { TenantStore } = await import("../../tenants/index.js");
  const objectStore = await openObjectStore(opts.objects);
  try {
    const tenants = new TenantStore({
      objectStore,
      cacheRoot: resolve(opts.cache),
      idleTtlMs: 0,
      checkpointIntervalMs: 0,
      checkpointWrites: Number.MAX_SAFE_INTEGER,
      // Closing this store must not take the local copies away from the service that owns the cache.
      diskBudgetBytes: keepFiles ? Number.MAX_SAFE_INTEGER : 0,
    });
    try {
      return await fn(tenants);
    } finally {
      await tenants.close();
    }
  } finally {
    await objectStore.close();
  }
}

function common(cmd: Command): Command {
  return cmd
    .requiredOption(
      "--objects <url>",
      "object store: a path, file://..., s3://bucket?endpoint=... (env STOREROOM_OBJECTS)",
      process.env.STOREROOM_OBJECTS,
    )
    .requiredOption(
      "--cache <dir>",
      "tenant cache directory (env STOREROOM_TENANT_CACHE)",
      process.env.STOREROOM_TENANT_CACHE,
    )
    .option("--json", "print one JSON line (stable shape, see docs/tenants.md)");
}

async function parseKeys(texts: readonly string[]): Promise<Key[]> {
  const { TenantKey } = await import("../../tenants/index.js");
  return texts.map((text) => TenantKey.parse(text));
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Runs `fn` per key, advancing `progress` (a bar on an interactive terminal) after each. */
async function eachWithProgress<T>(
  keys: readonly Key[],
  progress: CliProgress | undefined,
  fn: (key: Key) => Promise<T>,
): Promise<{ done: { key: string; result: T }[]; failed: { key: string; error: string }[] }> {
  const done: { key: string; result: T }[] = [];
  const failed: { key: string; error: string }[] = [];
  progress?.update(0, keys.length);
  try {
    for (const key of keys) {
      try {
        done.push({ key: key.toString(), result: await fn(key) });
      } catch (err) {
        failed.push({ key: key.toString(), error: message(err) });
      }
      progress?.update(done.length + failed.length, keys.length);
    }
  } finally {
    progress?.stop();
  }
  return { done, failed };
}

/** `storeroom tenants ls|checkpoint|evict|inspect`: look at and flush a tenant cache from the shell. */
export function registerTenants(program: Command): void {
  const tenants = helpFooter(
    program
      .command("tenants")
      .description("Per-tenant SQLite databases: list them, flush a cache to object storage, inspect one."),
    ["storeroom tenants ls --objects ./.storeroom/objects --cache ./.storeroom/cache --json"],
    "0 ok, 2 error",
  );

  common(tenants.command("ls"))
    .description("List tenants in object storage and in the cache (with unflushed local copies marked).")
    .option("--org <org>", "only this org")
    .addHelpText(
      "after",
      "\nExample:\n  storeroom tenants ls --objects ./.storeroom/objects --cache ./.storeroom/cache --org acme\n\nExit codes: 0 ok, 2 error.",
    )
    .action(async (opts: CommonOptions & { org?: string }) => {
      await withTenants(opts, async (store) => {
        const listed = await store.list(opts.org === undefined ? {} : { orgId: opts.org });
        const cached = new Map((await store.listCached()).map((c) => [c.key.toString(), c]));
        const rows: {
          key: string;
          object: { size: number; etag: string; lastModified: number } | null;
          cache: string | null;
        }[] = listed.map((l) => ({
          key: l.key.toString(),
          object: { size: l.size, etag: l.etag, lastModified: l.lastModified },
          cache: cacheStatus(cached.get(l.key.toString())?.state, l.etag),
        }));
        for (const [key, c] of cached) {
          if ((opts.org === undefined || c.key.orgId === opts.org) && !listed.some((l) => l.key.toString() === key)) {
            rows.push({ key, object: null, cache: cacheStatus(c.state, null) });
          }
        }
        rows.sort((a, b) => (a.key < b.key ? -1 : 1));
        if (opts.json) printJson({ tenants: rows });
        else {
          for (const r of rows) {
            const size = r.object === null ? "-" : String(r.object.size);
            process.stdout.write(`${r.key}\t${size}\t${r.cache ?? ""}\n`);
          }
        }
      });
    });

  common(tenants.command("checkpoint"))
    .description("Upload cached tenants that hold writes not yet in object storage (all of them without arguments).")
    .argument("[keys...]", 'tenants as "org/users/user" or "org/org"')
    .addHelpText(
      "after",
      "\nExample:\n  storeroom tenants checkpoint --objects ./objects --cache ./cache acme/users/ada\n\nExit codes: 0 every tenant done, 2 error (also when any tenant failed; listed under failed).",
    )
    .action(async (texts: string[], opts: CommonOptions) => {
      const explicit = await parseKeys(texts);
      await withTenants(opts, async (store) => {
        const cached = await store.listCached();
        const keys = explicit.length > 0 ? explicit : cached.filter((c) => c.state?.open !== false).map((c) => c.key);
        const cachedIds = new Set(cached.map((c) => c.key.toString()));
        const { done, failed } = await eachWithProgress(keys, await startProgress("tenants", opts), async (key) => {
          if (!cachedIds.has(key.toString())) return { uploaded: false, etag: null, bytes: 0, note: "not cached" };
          await store.get(key);
          await store.markDirty(key);
          const result = await store.checkpoint(key);
          return { uploaded: result.uploaded, etag: result.etag, bytes: result.bytes };
        });
        const out = { checkpointed: done.map((d) => ({ key: d.key, ...d.result })), failed };
        if (opts.json) printJson(out);
        else {
          for (const d of out.checkpointed)
            process.stdout.write(`${d.key}\t${d.uploaded ? `${d.bytes} bytes` : "skipped"}\n`);
          for (const f of failed) process.stderr.write(`${f.key}\tFAILED: ${f.error}\n`);
        }
        if (failed.length > 0) process.exitCode = ExitCode.error;
      });
    });

  common(tenants.command("evict"))
    .description("Checkpoint cached tenants if needed and remove their local copies.")
    .argument("<keys...>", 'tenants as "org/users/user" or "org/org"')
    .addHelpText(
      "after",
      "\nExample:\n  storeroom tenants evict --objects ./objects --cache ./cache acme/org\n\nExit codes: 0 every tenant done, 2 error (also when any tenant failed; listed under failed).",
    )
    .action(async (texts: string[], opts: CommonOptions) => {
      const keys = await parseKeys(texts);
      await withTenants(
        opts,
        async (store) => {
          const cachedIds = new Set((await store.listCached()).map((c) => c.key.toString()));
          const { done, failed } = await eachWithProgress(keys, undefined, async (key) => {
            if (!cachedIds.has(key.toString())) return "not cached";
            await store.get(key);
            await store.evict(key);
            return "evicted";
          });
          const out = { evicted: done.filter((d) => d.result === "evicted").map((d) => d.key), failed };
          if (opts.json) printJson(out);
          else {
            for (const d of done) process.stdout.write(`${d.key}\t${d.result}\n`);
            for (const f of failed) process.stderr.write(`${f.key}\tFAILED: ${f.error}\n`);
          }
          if (failed.length > 0) process.exitCode = ExitCode.error;
        },
        false,
      );
    });

  common(tenants.command("inspect"))
    .description("Show what object storage and the cache hold for one tenant.")
    .argument("<key>", 'tenant as "org/users/user" or "org/org"')
    .addHelpText(
      "after",
      "\nExample:\n  storeroom tenants inspect --objects ./objects --cache ./cache acme/users/ada --json\n\nExit codes: 0 ok, 2 error (e.g. a malformed tenant key).",
    )
    .action(async (text: string, opts: CommonOptions) => {
      const [key] = await parseKeys([text]);
      await withTenants(opts, async (store) => {
        const info = await store.inspect(key as Key);
        const cached = (await store.listCached()).find((c) => c.key.equals(key as Key));
        const out = {
          key: info.key.toString(),
          objectKey: info.objectKey,
          localPath: info.localPath,
          object: info.object && {
            size: info.object.size,
            etag: info.object.etag,
            lastModified: info.object.lastModified,
          },
          cache:
            cached === undefined
              ? null
              : { ...cached.state, status: cacheStatus(cached.state, info.object?.etag ?? null) },
        };
        if (opts.json) printJson(out);
        else process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      });
    });
}

/** `clean` (same generation as the object), `unflushed` (may hold writes the object lacks), `stale`, `unknown`, or null when not cached. */
function cacheStatus(
  state: { etag: string | null; open: boolean } | undefined,
  objectEtag: string | null,
): string | null {
  if (state === undefined) return null;
  if (state.etag !== objectEtag) return state.open ? "conflict" : "stale";
  return state.open ? "unflushed" : "clean";
}
