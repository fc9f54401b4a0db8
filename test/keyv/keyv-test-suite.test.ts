import keyvTestSuite, { keyvIteratorTests } from "@keyv/test-suite";
import Keyv from "keyv";
import * as vitest from "vitest";
import { KeyvStoreroom } from "../../src/keyv/index.js";
import { forEachStateBackend } from "../support/state-backends.js";

// Keyv's own adapter test suite (API, values, namespaces, iterator), run as published.
forEachStateBackend("@keyv/test-suite on KeyvStoreroom", (shared) => {
  const store = () => new KeyvStoreroom({ state: shared.state });
  keyvTestSuite(vitest, Keyv, store);
  keyvIteratorTests(vitest, Keyv, store);
});
