// Child process of tenant-crash.test.ts: leaves dirty tenants behind, then waits to be killed.
import { FileObjectStore } from "../../src/objects/file-object-store.js";
import { TenantKey, TenantStore } from "../../src/tenants/index.js";

const [objectsRoot, cacheRoot] = process.argv.slice(2) as [string, string];
const store = new TenantStore({
  objectStore: new FileObjectStore({ root: objectsRoot }),
  cacheRoot,
  idleTtlMs: 0,
  checkpointIntervalMs: 0,
  checkpointWrites: 1_000_000,
});
const a = await store.get(TenantKey.user("acme", "ada"));
await a.run("CREATE TABLE notes (body TEXT)");
await a.run("INSERT INTO notes VALUES ('a1')");
await store.checkpoint(TenantKey.user("acme", "ada"));
await a.run("INSERT INTO notes VALUES ('a2')");
const b = await store.get(TenantKey.user("acme", "bob"));
await b.run("CREATE TABLE notes (body TEXT)");
await b.run("INSERT INTO notes VALUES ('b1')");
const c = await store.get(TenantKey.user("acme", "cy"));
await c.run("CREATE TABLE notes (body TEXT)");
await c.run("INSERT INTO notes VALUES ('c1')");
await store.evict(TenantKey.user("acme", "cy"));
process.stdout.write("ready\n");
setInterval(() => undefined, 1000);
