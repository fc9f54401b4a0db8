import { afterAll, describe, it } from "vitest";
import { MemoryObjectStore } from "../../src/objects/index.js";
import { TenantStore } from "../../src/tenants/index.js";
import { runExecutorContract } from "../../src/testing/index.js";
import { useTempDir } from "../support/temp-dir.js";

// A TenantDatabase is the third Database: every case gets a fresh tenant of one store.
describe("TenantDatabase", () => {
  const dir = useTempDir("storeroom-tenant-contract-");
  let store: TenantStore | undefined;
  let n = 0;
  afterAll(async () => {
    await store?.close();
  });
  runExecutorContract(
    async () => {
      store ??= await TenantStore.open({ objectStore: new MemoryObjectStore(), cacheRoot: dir });
      return store.get({ orgId: `contract${n++}` });
    },
    { describe, it, name: "tenant database: executor contract" },
  );
});
