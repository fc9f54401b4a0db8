import { afterAll, describe, expect, it, vi } from "vitest";
import { UnsupportedError } from "../../src/errors.js";
import { S3ObjectStore } from "../../src/objects/s3-object-store.js";
import { createServer } from "../../src/server/index.js";
import { TenantKey, TenantStore } from "../../src/tenants/index.js";
import { useTempDir } from "../support/temp-dir.js";
import { useProxiedS3rver } from "../support/use-proxied-s3rver.js";
import { race } from "./overlap.js";
import { useTenantStores } from "./tenant-fixture.js";

describe("TenantStore on S3 (s3rver behind the conditional proxy)", () => {
  const t = useTenantStores();
  const root = useTempDir("storeroom-tenants-s3-");
  const s3rver = useProxiedS3rver({ bucket: "tenants" });
  const stores: S3ObjectStore[] = [];
  const objectStore = (direct = false): S3ObjectStore => {
    const options = direct ? s3rver.s3.storeOptions : s3rver.storeOptions;
    const store = new S3ObjectStore({ ...options, partSize: 64 * 1024 });
    stores.push(store);
    return store;
  };

  afterAll(async () => {
    for (const store of stores) await store.close();
  });

  for (const seeded of [false, true]) {
    it(`exactly one of two stores wins a publication (${seeded ? "If-Match" : "If-None-Match"})`, async () => {
      const refused = s3rver.proxy.stats.preconditionFailed;
      const objects = objectStore();
      await race(
        await t.open({ objectStore: objects }),
        await t.open({ objectStore: objectStore() }),
        objects,
        seeded,
        TenantKey.user(`s3-${seeded}`, "ada"),
      );
      expect(s3rver.proxy.stats.preconditionFailed).toBeGreaterThan(refused);
    });
  }

  it("uploads snapshots in parts above the threshold and hydrates them back", async () => {
    const objects = objectStore();
    const key = TenantKey.user("big", "ada");
    const writer = await t.open({ objectStore: objects, multipartThresholdBytes: 1, snapshotFraction: 0 });
    await writer.withTenant(key, async (db) => {
      await db.run("CREATE TABLE blobs (b BLOB)");
      await db.transaction(async (tx) => {
        for (let i = 0; i < 100; i++) await tx.run("INSERT INTO blobs VALUES (randomblob(4096))");
      });
    });
    await writer.checkpoint(key);
    // The snapshot taken after the publication (snapshotFraction 0) holds the 400 KiB of random data.
    await expect.poll(() => writer.stats.replication.snapshotBytes, { timeout: 10_000 }).toBeGreaterThan(3 * 64 * 1024);
    await writer.close();
    const reader = await t.open({ objectStore: objectStore() });
    const db = await reader.get(key);
    expect(await db.get("SELECT count(*) AS n, sum(length(b)) AS bytes FROM blobs")).toEqual({
      n: 100,
      bytes: 409_600,
    });
  });

  it("refuses plain s3rver (it ignores conditional writes) unless told unsafeNoCas, which it says loudly", async () => {
    const plain = objectStore(true);
    const err = await t.open({ objectStore: plain }).catch((e) => e);
    expect(err).toBeInstanceOf(UnsupportedError);
    expect(err.message).toContain("If-None-Match: *");
    expect(err.message).toContain("If-Match");
    expect(err.message).toContain("--unsafe-no-cas");
    const warn = vi.spyOn(process, "emitWarning").mockImplementation(() => undefined);
    try {
      const store = await t.open({ objectStore: plain, unsafeNoCas: true });
      expect(warn.mock.calls.map((c) => String(c[0])).join("\n")).toMatch(/UNSAFE.*conditional writes/);
      await store.close();
    } finally {
      warn.mockRestore();
    }
    // The same object store behind the proxy (real S3 behaviour) opens without a word.
    const proxied = await TenantStore.open({ objectStore: objectStore(), cacheRoot: `${root}/through-proxy` });
    expect(proxied).toBeInstanceOf(TenantStore);
    await proxied.close();
  });

  it("storeroom serve refuses plain s3rver at start unless started with unsafeNoCas", async () => {
    const err = await createServer({ dataDir: `${root}/serve-plain`, objects: objectStore(true), port: 0 }).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(UnsupportedError);
    expect(err.message).toContain("--unsafe-no-cas");
    const warn = vi.spyOn(process, "emitWarning").mockImplementation(() => undefined);
    try {
      const server = await createServer({
        dataDir: `${root}/serve-unsafe`,
        objects: objectStore(true),
        port: 0,
        unsafeNoCas: true,
      });
      expect(warn.mock.calls.some((c) => /UNSAFE/.test(String(c[0])))).toBe(true);
      await server.close();
    } finally {
      warn.mockRestore();
    }
  });
});
