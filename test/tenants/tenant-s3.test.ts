import { afterAll, describe, expect, it } from "vitest";
import { S3ObjectStore } from "../../src/objects/s3-object-store.js";
import { TenantKey } from "../../src/tenants/index.js";
import { FaultyObjectStore } from "../support/faulty-object-store.js";
import { useProxiedS3rver } from "../support/use-proxied-s3rver.js";
import { race, writeIntoMultipartWindow } from "./cas-race.js";
import { useTenantStores } from "./tenant-fixture.js";

describe("TenantStore on S3 (s3rver behind the conditional proxy)", () => {
  const t = useTenantStores();
  const s3rver = useProxiedS3rver({ bucket: "tenants" });
  const stores: S3ObjectStore[] = [];
  const objectStore = (): S3ObjectStore => {
    const store = new S3ObjectStore({ ...s3rver.storeOptions, partSize: 64 * 1024 });
    stores.push(store);
    return store;
  };

  afterAll(async () => {
    for (const store of stores) await store.close();
  });

  for (const seeded of [false, true]) {
    it(`exactly one of two stores wins a checkpoint (${seeded ? "If-Match" : "If-None-Match"})`, async () => {
      const refused = s3rver.proxy.stats.preconditionFailed;
      const objects = objectStore();
      await race(
        t.open({ objectStore: objects }),
        t.open({ objectStore: objectStore() }),
        objects,
        seeded,
        TenantKey.user(`s3-${seeded}`, "ada"),
      );
      expect(s3rver.proxy.stats.preconditionFailed).toBeGreaterThan(refused);
    });
  }

  it("a write landing between a multipart checkpoint's init and its completion is refused by CompleteMultipartUpload", async () => {
    const refused = s3rver.proxy.stats.preconditionFailed;
    const objects = objectStore();
    const paused = new FaultyObjectStore(objectStore());
    const options = { multipartThresholdBytes: 1, checkpointWrites: 1e9 };
    await writeIntoMultipartWindow(
      t.open({ objectStore: objects, ...options }),
      t.open({ objectStore: paused, ...options }),
      paused,
      t.open({ objectStore: objectStore() }),
      TenantKey.user("s3-window", "ada"),
    );
    expect(s3rver.proxy.stats.preconditionFailed).toBe(refused + 1);
  });

  it("checkpoints in parts above the threshold and hydrates them back", async () => {
    const objects = objectStore();
    const key = TenantKey.user("big", "ada");
    const writer = t.open({ objectStore: objects, multipartThresholdBytes: 1, checkpointWrites: 1e9 });
    await writer.withTenant(key, async (db) => {
      await db.run("CREATE TABLE blobs (b BLOB)");
      await db.transaction(async (tx) => {
        for (let i = 0; i < 100; i++) await tx.run("INSERT INTO blobs VALUES (randomblob(4096))");
      });
    });
    const result = await writer.checkpoint(key);
    expect(result.uploaded).toBe(true);
    expect(result.bytes).toBeGreaterThan(3 * 64 * 1024);
    const reader = t.open({ objectStore: objectStore() });
    const db = await reader.get(key);
    expect(await db.get("SELECT count(*) AS n, sum(length(b)) AS bytes FROM blobs")).toEqual({
      n: 100,
      bytes: 409_600,
    });
  });
});
