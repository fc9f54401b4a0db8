import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FileObjectStore, StateStore, TenantKey, TenantStore } from "../../src/index.js";
import { useTempDir } from "../support/temp-dir.js";

describe("tenants end to end, as a new user would write it", () => {
  const root = useTempDir("storeroom-tenants-e2e-");

  it("runs another storeroom store (state) on a tenant database, across a restart on a fresh machine", async () => {
    const objectStore = new FileObjectStore({ root: join(root, "objects") });
    const tenants = await TenantStore.open({ objectStore, cacheRoot: join(root, "cache-a") });
    const ada = TenantKey.user("acme", "ada");
    const state = await StateStore.open({ database: await tenants.get(ada) });
    await state.set("profile", "name", "Ada");
    await state.close();
    await tenants.close();

    const elsewhere = await TenantStore.open({ objectStore, cacheRoot: join(root, "cache-b") });
    const again = await StateStore.open({ database: await elsewhere.get(ada) });
    expect(await again.get("profile", "name")).toBe("Ada");
    await again.close();
    await elsewhere.close();
    await objectStore.close();
  });
});
