import { join } from "node:path";
import { describe, it } from "vitest";
import { openStore } from "../../src/kv/index.js";
import { runStoreConformance } from "../../src/testing/index.js";
import { useTempDir } from "../support/temp-dir.js";

const dir = useTempDir("storeroom-kv-");
let files = 0;

runStoreConformance(() => openStore("sqlite", ":memory:"), {
  describe,
  it: (name, fn) => it(name, fn, 20_000),
  name: "sqlite driver conformance (:memory:)",
});

runStoreConformance(() => openStore("sqlite", join(dir, `store-${files++}.db`)), {
  describe,
  it: (name, fn) => it(name, fn, 20_000),
  name: "sqlite driver conformance (file, WAL)",
});
