import { resolve } from "node:path";
import type { Command } from "commander";
import { InvalidArgumentError } from "../../errors.js";
import { requireExistingDirectory, requireExistingObjectStore } from "../existing-directory.js";
import { helpFooter } from "../help-footer.js";
import { ExitCode, printJson } from "../output.js";
import { type CliProgress, startProgress } from "../progress.js";

interface ObjectsOptions {
  objects: string;
  json?: boolean;
}

interface CommonOptions extends ObjectsOptions {
  cache: string;
  unsafeNoCas?: boolean;
}

type Tenants = import("../../tenants/index.js").TenantStore;
type Key = import("../../tenants/index.js").TenantKey;
type ObjectStore = import("../../objects/index.js").ObjectStore;

/**
 * Opens the object store and a TenantStore on the cache (which takes the cache lock: a running
 * service makes this fail). The cache must exist: a mistyped one holds nothing to publish or evict.
 */
async function withTenants<T>(opts: CommonOptions, fn: (tenants: Tenants) => Promise<T>, keepFiles = true): Promise<T> {
  requireExistingDirectory(resolve(opts.cache), "--cache", "cli.tenants");
  const { TenantStore } = await import("../../tenants/index.js");
  return withObjects(opts, async (objectStore) => {
    const tenants = await TenantStore.open({
      objectStore,
      cacheRoot: resolve(opts.cache),
      idleTtlMs: 0,
      unsafeNoCas: opts.unsafeNoCas === true,
      // Closing this store must not take the local copies away from the service that owns the cache.
      diskBudgetBytes: keepFiles ? Number.MAX_SAFE_INTEGER : 0,
    });
    try {
      return await fn(tenants);
    } finally {
      await tenants.close();
    }
  });
}

/**
 * {@link withObjects} for commands that only read object storage (and, with `--cache`, a
 * cache): a local store or cache directory that does not exist is an error (a mistyped path
 * would otherwise list nothing and leave a new directory behind).
 */
async function readObjects<T>(
  opts: ObjectsOptions & { cache?: string },
  fn: (store: ObjectStore) => Promise<T>,
): Promise<T> {
  requireExistingObjectStore(opts.objects, "cli.tenants");
  if (opts.cache !== undefined) requireExistingDirectory(resolve(opts.cache), "--cache", "cli.tenants");
  return withObjects(opts, fn);
}

async function withObjects<T>(opts: ObjectsOptions, fn: (store: ObjectStore) => Promise<T>): Promise<T> {
  const { openObjectStore } = await import("../../objects/index.js");
  const objectStore = await openObjectStore(opts.objects);
  try {
    return await fn(objectStore);
  } finally {
    await objectStore.close();
  }
}

function objectsOption(cmd: Command): Command {
  return cmd
    .requiredOption(
      "--objects <url>",
      "object store: a path, file://..., s3://bucket?endpoint=... (env STOREROOM_OBJECTS)",
      process.env.STOREROOM_OBJECTS,
    )
    .option("--json", "print one JSON line (stable shape, see docs/tenants.md)");
}

function cacheOption(cmd: Command): Command {
  return cmd.requiredOption(
    "--cache <dir>",
    "tenant cache directory (env STOREROOM_TENANT_CACHE)",
    process.env.STOREROOM_TENANT_CACHE,
  );
}

/** `--cache` of commands that only read it: optional, and the cache lock is never taken. */
function readOnlyCacheOption(cmd: Command): Command {
  return cmd.option(
    "--cache <dir>",
    "tenant cache directory to report on, read without its lock (env STOREROOM_TENANT_CACHE)",
    process.env.STOREROOM_TENANT_CACHE,
  );
}

function common(cmd: Command): Command {
  return cacheOption(objectsOption(cmd)).option(
    "--unsafe-no-cas",
    "run even if the object store ignores conditional writes",
  );
}

async function parseKeys(texts: readonly string[]): Promise<Key[]> {
  const { TenantKey } = await import("../../tenants/index.js");
  return texts.map((text) => TenantKey.parse(text));
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** `--at`: a transaction id (digits) or an ISO 8601 time. */
function parsePoint(text: string): number | Date {
  if (/^\d+$/.test(text)) return Number(text);
  const time = new Date(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(time.getTime())) {
    throw new InvalidArgumentError(`--at takes a transaction id or an ISO time, got ${JSON.stringify(text)}`, {
      op: "cli.tenants",
    });
  }
  return time;
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

/** `storeroom tenants ...`: look at, publish, restore and audit replicated tenant databases from the shell. */
export function registerTenants(program: Command): void {
  const tenants = helpFooter(
    program
      .command("tenants")
      .description(
        "Per-tenant SQLite databases replicated to object storage: list, publish, inspect, history, restore, conflicts.",
      ),
    ["storeroom tenants ls --objects ./.storeroom/objects --cache ./.storeroom/cache --json"],
    "0 ok, 2 error",
  );

  helpFooter(
    readOnlyCacheOption(objectsOption(tenants.command("ls")))
      .description(
        "List tenants in object storage and, with --cache, in a cache (copies that may hold unpublished writes are marked). Reads only: runs beside a live service.",
      )
      .option("--org <org>", "only this org"),
    ["storeroom tenants ls --objects ./.storeroom/objects --cache ./.storeroom/cache --org acme"],
    "0 ok, 2 error",
  ).action(async (opts: ObjectsOptions & { cache?: string; org?: string }) => {
    const { listCachedTenants, listTenants, inspectTenant } = await import("../../tenants/index.js");
    await readObjects(opts, async (objects) => {
      const listed = await listTenants(objects, opts.org === undefined ? {} : { orgId: opts.org });
      const cacheRoot = opts.cache === undefined ? undefined : resolve(opts.cache);
      const cached = cacheRoot === undefined ? [] : await listCachedTenants(cacheRoot);
      const status = async (key: Key): Promise<string> =>
        (await inspectTenant(objects, key, cacheRoot)).unpublished ? "unpublished" : "cached";
      const cachedIds = new Set(cached.map((c) => c.key.toString()));
      const rows: { key: string; layout: string | null; size: number | null; cache: string | null }[] = [];
      for (const l of listed) {
        const id = l.key.toString();
        rows.push({ key: id, layout: l.layout, size: l.size, cache: cachedIds.has(id) ? await status(l.key) : null });
      }
      for (const c of cached) {
        const id = c.key.toString();
        if ((opts.org === undefined || c.key.orgId === opts.org) && !listed.some((l) => l.key.toString() === id)) {
          rows.push({ key: id, layout: null, size: null, cache: await status(c.key) });
        }
      }
      rows.sort((x, y) => (x.key < y.key ? -1 : 1));
      if (opts.json) printJson({ tenants: rows });
      else {
        for (const r of rows) {
          process.stdout.write(`${r.key}\t${r.layout ?? "-"}\t${r.size ?? "-"}\t${r.cache ?? ""}\n`);
        }
      }
    });
  });

  helpFooter(
    common(tenants.command("checkpoint"))
      .description("Publish what cached tenants hold and object storage lacks (every cached tenant without arguments).")
      .argument("[keys...]", 'tenants as "org/users/user" or "org/org"'),
    ["storeroom tenants checkpoint --objects ./objects --cache ./cache acme/users/ada"],
    "0 every tenant done, 2 error (also when any tenant failed; listed under failed)",
  ).action(async (texts: string[], opts: CommonOptions) => {
    const explicit = await parseKeys(texts);
    await withTenants(opts, async (store) => {
      const cached = await store.listCached();
      const keys = explicit.length > 0 ? explicit : cached.map((c) => c.key);
      const cachedIds = new Set(cached.map((c) => c.key.toString()));
      const { done, failed } = await eachWithProgress(keys, await startProgress("tenants", opts), async (key) => {
        if (!cachedIds.has(key.toString())) return { uploaded: false, txid: 0, bytes: 0, note: "not cached" };
        await store.get(key);
        const result = await store.checkpoint(key);
        return { uploaded: result.uploaded, txid: result.txid, bytes: result.bytes };
      });
      const out = { checkpointed: done.map((d) => ({ key: d.key, ...d.result })), failed };
      if (opts.json) printJson(out);
      else {
        for (const d of out.checkpointed)
          process.stdout.write(
            `${d.key}\t${d.uploaded ? `${d.bytes} bytes, at transaction ${d.txid}` : "nothing new"}\n`,
          );
        for (const f of failed) process.stderr.write(`${f.key}\tFAILED: ${f.error}\n`);
      }
      if (failed.length > 0) process.exitCode = ExitCode.error;
    });
  });

  helpFooter(
    common(tenants.command("evict"))
      .description("Publish cached tenants if needed and remove their local copies.")
      .argument("<keys...>", 'tenants as "org/users/user" or "org/org"'),
    ["storeroom tenants evict --objects ./objects --cache ./cache acme/org"],
    "0 every tenant done, 2 error (also when any tenant failed; listed under failed)",
  ).action(async (texts: string[], opts: CommonOptions) => {
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

  helpFooter(
    readOnlyCacheOption(objectsOption(tenants.command("inspect")))
      .description(
        "Show what object storage and, with --cache, a cache hold for one tenant. Reads only: runs beside a live service.",
      )
      .argument("<key>", 'tenant as "org/users/user" or "org/org"'),
    ["storeroom tenants inspect --objects ./objects --cache ./cache acme/users/ada --json"],
    "0 ok, 2 error (e.g. a malformed tenant key)",
  ).action(async (text: string, opts: ObjectsOptions & { cache?: string }) => {
    const [key] = await parseKeys([text]);
    const { inspectTenant } = await import("../../tenants/index.js");
    await readObjects(opts, async (objects) => {
      const info = await inspectTenant(objects, key as Key, opts.cache === undefined ? undefined : resolve(opts.cache));
      const out = {
        key: info.key.toString(),
        manifestKey: info.manifestKey,
        localPath: info.localPath,
        manifest: info.manifest && {
          size: info.manifest.size,
          etag: info.manifest.etag,
          lastModified: info.manifest.lastModified,
        },
        cache: info.cached?.position ?? null,
        unpublished: info.unpublished,
      };
      if (opts.json) printJson(out);
      else process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    });
  });

  helpFooter(
    objectsOption(tenants.command("history"))
      .description("List a tenant's retained snapshots and segments with their transactions and times.")
      .argument("<key>", 'tenant as "org/users/user" or "org/org"'),
    ["storeroom tenants history --objects ./.storeroom/objects acme/users/ada"],
    "0 ok, 1 a finding (the tenant has no manifest in object storage), 2 error (malformed key, unreachable store)",
  ).action(async (text: string, opts: ObjectsOptions) => {
    const [key] = await parseKeys([text]);
    const { tenantHistory } = await import("../../tenants/index.js");
    await readObjects(opts, async (store) => {
      const history = await tenantHistory(store, key as Key);
      if (history === null) {
        if (opts.json) printJson({ key: String(key), found: false });
        else process.stderr.write(`not found: tenant ${key} has no manifest in object storage\n`);
        process.exitCode = ExitCode.finding;
        return;
      }
      const out = {
        key: history.key.toString(),
        generation: history.generation,
        epoch: history.epoch,
        writer: history.writer,
        txid: history.txid,
        time: new Date(history.time).toISOString(),
        pageSize: history.pageSize,
        pages: history.pages,
        snapshots: history.snapshots.map((s) => ({
          txid: s.txid,
          time: new Date(s.time).toISOString(),
          pages: s.pages,
          bytes: s.bytes,
          generation: s.generation,
          key: s.key,
        })),
        segments: history.segments.map((s) => ({
          first: s.first,
          last: s.last,
          time: new Date(s.time).toISOString(),
          bytes: s.bytes,
          key: s.key,
        })),
      };
      if (opts.json) printJson(out);
      else {
        process.stdout.write(
          `${out.key}: transaction ${out.txid} at ${out.time}, generation ${out.generation}, epoch ${out.epoch}\n`,
        );
        for (const s of out.snapshots) process.stdout.write(`snapshot\t${s.txid}\t${s.time}\t${s.bytes} bytes\n`);
        for (const s of out.segments)
          process.stdout.write(`segment\t${s.first}-${s.last}\t${s.time}\t${s.bytes} bytes\n`);
      }
    });
  });

  helpFooter(
    objectsOption(tenants.command("restore"))
      .description(
        "Restore a tenant as it was at a transaction or time: into a new SQLite file (--to), or as the tenant's current state (--as-new-generation).",
      )
      .argument("<key>", 'tenant as "org/users/user" or "org/org"')
      .requiredOption("--at <point>", "transaction id, or ISO time (the last transaction published by then)")
      .option("--to <file>", "write the restored database to this new file")
      .option("--as-new-generation", "publish the restored state as the tenant's current state (a new generation)"),
    [
      "storeroom tenants restore --objects ./.storeroom/objects acme/users/ada --at 2026-05-01T12:00:00Z --to ./ada.db",
      "storeroom tenants restore --objects ./.storeroom/objects acme/users/ada --at 1234 --as-new-generation",
    ],
    "0 restored, 2 error (point outside retention, file exists, tenant changed meanwhile)",
  )
    .addHelpText(
      "after",
      "\nA server holding the tenant keeps serving its copy until its next write (then fenced: its unpublished writes\nbecome a conflict record) or eviction; evict it first for an immediate switch.",
    )
    .action(async (text: string, opts: ObjectsOptions & { at: string; to?: string; asNewGeneration?: boolean }) => {
      const [key] = await parseKeys([text]);
      if ((opts.to === undefined) === (opts.asNewGeneration !== true)) {
        throw new InvalidArgumentError("restore needs exactly one of --to FILE and --as-new-generation", {
          op: "cli.tenants",
        });
      }
      const at = parsePoint(opts.at);
      const { restoreAsNewGeneration, restoreTenant } = await import("../../tenants/index.js");
      await readObjects(opts, async (store) => {
        const started = performance.now();
        if (opts.to !== undefined) {
          const r = await restoreTenant(store, key as Key, at, resolve(opts.to));
          const out = {
            key: String(key),
            txid: r.txid,
            to: resolve(opts.to),
            pages: r.pages,
            pageSize: r.pageSize,
            snapshotTxid: r.snapshot.txid,
            segments: r.segments,
            bytes: r.bytes,
            ms: Math.round(performance.now() - started),
          };
          if (opts.json) printJson(out);
          else process.stdout.write(`restored ${out.key} at transaction ${out.txid} into ${out.to} (${out.ms} ms)\n`);
        } else {
          const r = await restoreAsNewGeneration(store, key as Key, at);
          const out = { key: String(key), restoredTxid: r.restoredTxid, txid: r.txid, generation: r.generation };
          if (opts.json) printJson(out);
          else {
            process.stdout.write(
              `${out.key}: the state at transaction ${out.restoredTxid} is now current as transaction ${out.txid} (generation ${out.generation})\n`,
            );
          }
        }
      });
    });

  const conflicts = helpFooter(
    tenants
      .command("conflicts")
      .description(
        "List conflict records: local copies that lost their tenant to another writer (reads the cache only).",
      )
      .option(
        "--cache <dir>",
        "tenant cache directory (env STOREROOM_TENANT_CACHE)",
        process.env.STOREROOM_TENANT_CACHE,
      )
      .option("--json", "print one JSON line (stable shape, see docs/tenants.md)"),
    ["storeroom tenants conflicts --cache ./.storeroom/cache --json"],
    "0 ok, 2 error",
  ).action(async (opts: { cache?: string; json?: boolean }) => {
    const { listConflicts } = await import("../../tenants/index.js");
    const records = await listConflicts(cacheDir(opts.cache));
    if (opts.json) printJson({ conflicts: records });
    else {
      for (const r of records) {
        const lost = r.unpublishedTransactions === null ? "unknown" : String(r.unpublishedTransactions);
        process.stdout.write(
          `${r.id}\t${r.tenant}\t${r.reason}\t${new Date(r.time).toISOString()}\tunpublished: ${lost}\n`,
        );
      }
    }
  });

  helpFooter(
    conflicts
      .command("restore")
      .description("Write a conflict record's database to a new SQLite file.")
      .argument("<id>", "conflict record id (see storeroom tenants conflicts)")
      .requiredOption("--to <file>", "the new file"),
    ["storeroom tenants conflicts --cache ./.storeroom/cache restore 1767225600000-1a2b3c4d --to ./lost.db"],
    "0 written, 2 error (unknown id, file exists)",
  ).action(async (id: string, opts: { to: string }) => {
    const parent = conflicts.opts<{ cache?: string; json?: boolean }>();
    const { exportConflict } = await import("../../tenants/index.js");
    const record = await exportConflict(cacheDir(parent.cache), id, resolve(opts.to));
    if (parent.json) printJson({ id: record.id, tenant: record.tenant, to: resolve(opts.to) });
    else process.stdout.write(`conflict ${record.id} of ${record.tenant} written to ${resolve(opts.to)}\n`);
  });
}

/** The `--cache` directory of `conflicts`, which must exist: the commands only read it. */
function cacheDir(cache: string | undefined): string {
  if (cache === undefined || cache === "") {
    throw new InvalidArgumentError("--cache <dir> is required (or STOREROOM_TENANT_CACHE)", { op: "cli.tenants" });
  }
  const dir = resolve(cache);
  requireExistingDirectory(dir, "--cache", "cli.tenants");
  return dir;
}
