import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { S3ObjectStore } from "../../src/objects/s3-object-store.js";
import { TenantKey } from "../../src/tenants/index.js";
import { type ConditionalS3Proxy, startConditionalS3Proxy } from "../support/conditional-s3-proxy.js";
import { FaultyObjectStore } from "../support/faulty-object-store.js";
import { type S3rverHandle, startS3rver } from "../support/s3rver.js";
import { race, writeIntoMultipartWindow } from "./cas-race.js";
import { useTenantStores } from "./tenant-fixture.js";

describe("TenantStore on S3 (s3rver behind the conditional proxy)", () => {
  const t = useTenantStores();
  let s3: S3rverHandle;
  let proxy: ConditionalS3Proxy;
  const stores: S3ObjectStore[] = [];
  const objectStore = (): S3ObjectStore => {
    const store = new S3ObjectStore({ ...s3.storeOptions, endpoint: proxy.endpoint, partSize: 64 * 1024 });
    stores.push(store);
    return store;
  };

  beforeAll(async () => {
    s3 = await startS3rver({ bucket: "tenants" });
    proxy = await startConditionalS3Proxy(s3.endpoint);
  });
  afterAll(async () => {
    for (const store of stores) await store.close();
    await proxy.stop();
    await s3.stop();
  });

  for (const seeded of [false, true]) {
    it(`exactly one of two stores wins a checkpoint (${seeded ? "If-Match" : "If-None-Match"})`, async () => {
      const refused = proxy.stats.preconditionFailed;
      const objects = objectStore();
      await race(
        t.open({ objectStore: objects }),
        t.open({ objectStore: objectStore() }),
        objects,
        seeded,
        TenantKey.user(`s3-${seeded}`, "ada"),
      );
      expect(proxy.stats.preconditionFailed).toBeGreaterThan(refused);
    });
  }

  it("a write landing between a multipart checkpoint's init and its completion is refused by CompleteMultipartUpload", async () => {
    const refused = proxy.stats.preconditionFailed;
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
    expect(proxy.stats.preconditionFailed).toBe(refused + 1);
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
