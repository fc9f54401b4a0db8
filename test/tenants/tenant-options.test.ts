import { chmodSync, existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { InvalidArgumentError } from "../../src/errors.js";
import { openSqlite, tableExists } from "../../src/sql/index.js";
import {
  restoreAsNewGeneration,
  TenantKey,
  TenantLeases,
  type TenantStoreOptions,
  tenantHistory,
} from "../../src/tenants/index.js";
import { FaultyObjectStore } from "../support/faulty-object-store.js";
import { objectKeys, useTenantStores } from "./tenant-fixture.js";

const ada = TenantKey.user("acme", "ada");

describe("TenantStore options: one onError, deprecated aliases, removed options named", () => {
  const t = useTenantStores();

  it("the deprecated onReapFailure still receives (key, error) of a failed eviction", async () => {
    const objects = new FaultyObjectStore(t.objects());
    const seen: string[] = [];
    const store = await t.open({
      objectStore: objects,
      idleTtlMs: 1000,
      onError: undefined,
      onReapFailure: (key, error) => seen.push(`${key}: ${error instanceof Error ? error.name : String(error)}`),
    });
    await store.withTenant(ada, (db) => db.run("CREATE TABLE t (x)"));
    objects.failNext("put");
    t.clock.advance(1000);
    expect(await store.reap()).toEqual({ done: 0, failed: 1 });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatch(/^acme\/users\/ada: /);
    expect(t.failures).toEqual([]); // the fixture's onError was replaced, not called as well
    expect(await store.reap()).toEqual({ done: 1, failed: 0 });
  });

  it("refuses onError together with its deprecated alias, naming both", async () => {
    const error = await t.open({ onReapFailure: () => undefined }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as Error).message).toMatch(/onError and its deprecated alias onReapFailure/);
  });

  it("checkpointIntervalMs is the deprecated name of syncIntervalMs", async () => {
    const store = await t.open({ checkpointIntervalMs: 20 });
    const db = await store.get(ada);
    await db.run("CREATE TABLE notes (body TEXT)");
    await vi.waitFor(async () => expect((await store.inspect(ada)).replica?.txid).toBe(1), { timeout: 5000 });

    const off = await t.open({ checkpointIntervalMs: 0 });
    const other = await off.get(TenantKey.user("acme", "bob"));
    await other.run("CREATE TABLE notes (body TEXT)");
    expect((await off.inspect(TenantKey.user("acme", "bob"))).replica?.txid).toBe(0); // timer off: not published
    await expect(t.open({ checkpointIntervalMs: 5, syncIntervalMs: 5 })).rejects.toThrow(
      /syncIntervalMs and its deprecated alias checkpointIntervalMs/,
    );
    await expect(t.open({ checkpointIntervalMs: -1 })).rejects.toThrow(/syncIntervalMs/);
  });

  it("checkpointDue() is the deprecated name of publishPending()", async () => {
    const store = await t.open({ syncIntervalMs: 0 });
    await store.withTenant(ada, (db) => db.run("CREATE TABLE t (x)"));
    expect((await store.inspect(ada)).replica?.txid).toBe(0);
    expect(await store.checkpointDue()).toEqual({ done: 1, failed: 0 });
    expect((await store.inspect(ada)).replica?.txid).toBe(1);
    expect(await store.checkpointDue()).toEqual({ done: 0, failed: 0 });
  });

  it("refuses removed and malformed options by name instead of ignoring them, and opens nothing", async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ checkpointWrites: 100 }, /^checkpointWrites is no longer supported/],
      [{ connect: async () => undefined }, /^connect is no longer supported/],
      [{ lruSize: 1.5 }, /^lruSize must be a positive integer, got 1.5/],
      [{ lruSize: "10" }, /^lruSize must be a positive integer/],
      [{ onShipped: "log" }, /^onShipped must be a function/],
      [{ onError: {} }, /^onError must be a function/],
      [{ clock: {} }, /^clock must be a Clock \(an object with now\(\)\)/],
      [{ objectStore: { get: () => null } }, /^objectStore must be an ObjectStore/],
      [{ ownership: { acquire: () => undefined } }, /^ownership must be a TenantOwnership/],
      [{ idleTtlMs: -1 }, /^idleTtlMs must be a number >= 0, got -1/],
      [{ multipartThresholdBytes: 0 }, /^multipartThresholdBytes must be a number >= 1/],
      [{ durability: "eventually" }, /^durability must be "async" or "sync"/],
      [{ unsafeNoCas: "yes" }, /^unsafeNoCas must be a boolean/],
    ];
    for (const bad of ["", 5]) {
      const error = await t.open({ cacheRoot: bad as string }).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as Error).message).toMatch(/^cacheRoot must be a non-empty string/);
    }
    for (const [options, message] of cases) {
      const cacheRoot = join(t.newCacheRoot(), "fresh");
      const error = await t
        .open({ cacheRoot, ...(options as Partial<TenantStoreOptions>) })
        .catch((err: unknown) => err);
      expect(error, JSON.stringify(Object.keys(options))).toBeInstanceOf(InvalidArgumentError);
      expect((error as Error).message).toMatch(message);
      expect(existsSync(cacheRoot)).toBe(false); // nothing was created
      // The cache was not locked: a valid store opens on it at once.
      await expect(t.open({ cacheRoot })).resolves.toBeDefined();
    }
  });
});

describe("restoreAsNewGeneration options", () => {
  const t = useTenantStores();

  it("times the new snapshot with the given clock and names a malformed option before writing anything", async () => {
    const objects = t.objects();
    const store = await t.open({ syncIntervalMs: 0 });
    await store.withTenant(ada, async (db) => {
      await db.run("CREATE TABLE notes (body TEXT)");
      await db.run("INSERT INTO notes VALUES ('one')");
    });
    await store.close();
    const before = await objectKeys(objects, ada.prefix());
    for (const [options, message] of [
      [{ retentionMs: -1 }, /^retentionMs must be a non-negative number/],
      [{ tempDir: "" }, /^tempDir must be a non-empty string/],
    ] as const) {
      const error = await restoreAsNewGeneration(objects, ada, 1, options).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as Error).message).toMatch(message);
    }
    expect(await objectKeys(objects, ada.prefix())).toEqual(before);

    t.clock.advance(60_000);
    const restored = await restoreAsNewGeneration(objects, ada, 1, { clock: t.clock, tempDir: t.newCacheRoot() });
    expect(restored.txid).toBe(3);
    const history = await tenantHistory(objects, ada);
    expect(history?.snapshots.find((s) => s.generation === restored.generation)?.time).toBe(t.clock.now());
  });
});

describe("TenantLeases options", () => {
  const t = useTenantStores();

  it("refuses a malformed option by name before touching the database", async () => {
    const database = await openSqlite(join(t.newCacheRoot(), "control.db"));
    try {
      for (const [bad, message] of [
        [{ migrate: "no" }, /^migrate must be a boolean/],
        [{ onLost: "log" }, /^onLost must be a function/],
        [{ onError: 1 }, /^onError must be a function/],
        [{ leaseMs: 0 }, /^leaseMs must be a positive integer/],
        [{ holder: "" }, /^holder must be a non-empty string/],
      ] as const) {
        const error = await TenantLeases.open({ database, holder: "a", ...(bad as object) }).catch(
          (err: unknown) => err,
        );
        expect(error, JSON.stringify(bad)).toBeInstanceOf(InvalidArgumentError);
        expect((error as Error).message).toMatch(message);
      }
      expect(await tableExists(database, "storeroom_tenant_leases")).toBe(false);
      const leases = await TenantLeases.open({ database, holder: "a", clock: t.clock });
      const both = await Promise.all([leases.renew(), leases.renew()]); // one after the other, never beside
      expect(both).toEqual([
        { renewed: 0, lost: 0 },
        { renewed: 0, lost: 0 },
      ]);
      await leases.close();
    } finally {
      await database.close();
    }
  });
});

describe("TenantStore cache directory: private when created, a warning when an existing one is not", () => {
  const t = useTenantStores();
  const warnings: string[] = [];
  const listen = (warning: Error) => warnings.push(warning.message);
  beforeAll(() => process.on("warning", listen));
  afterAll(() => process.off("warning", listen));
  const mode = (path: string) => statSync(path).mode & 0o777;
  // Process warnings arrive on a later tick, in the order they were emitted: once a marker
  // emitted after the open has arrived, so has every warning of the open.
  let markers = 0;
  const about = async (path: string) => {
    const marker = `marker ${markers++}`;
    process.emitWarning(marker);
    await vi.waitFor(() => expect(warnings).toContain(marker), { timeout: 10_000 });
    return warnings.filter((w) => w.includes(path));
  };

  it("creates a missing cacheRoot with mode 0700 and says nothing", async () => {
    const root = join(t.newCacheRoot(), "new");
    await t.open({ cacheRoot: root });
    expect(mode(root)).toBe(0o700);
    expect(await about(root)).toEqual([]);
  });

  it("warns when an existing cacheRoot is open to group or others, naming it and its mode, and keeps the mode", async () => {
    for (const bits of [0o750, 0o705, 0o777]) {
      const root = join(t.newCacheRoot(), `shared-${bits.toString(8)}`);
      mkdirSync(root);
      chmodSync(root, bits);
      const store = await t.open({ cacheRoot: root });
      expect(await about(root)).toEqual([
        `storeroom: tenant cache ${root} is open to group or others (mode 0${bits.toString(8)}) and holds tenant databases; chmod 700 it to keep them private (an existing directory keeps its mode)`,
      ]);
      expect(mode(root)).toBe(bits);
      // A directory the store creates inside it is private all the same.
      await store.withTenant(TenantKey.org(`org${bits.toString(8)}`), (db) => db.run("CREATE TABLE t (x)"));
      expect(mode(join(root, `org${bits.toString(8)}`))).toBe(0o700);
    }
    expect(t.failures).toEqual([]);
  });

  it("opens an existing private cacheRoot (mode 0700) without a warning", async () => {
    const root = t.newCacheRoot();
    chmodSync(root, 0o700);
    await t.open({ cacheRoot: root });
    expect(await about(root)).toEqual([]);
  });
});
