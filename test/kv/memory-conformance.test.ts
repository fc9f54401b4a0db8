import { describe, it } from "vitest";
import { openStore } from "../../src/kv/index.js";
import { runStoreConformance } from "../../src/testing/index.js";

runStoreConformance(() => openStore("memory", ""), { describe, it, name: "memory driver conformance" });
