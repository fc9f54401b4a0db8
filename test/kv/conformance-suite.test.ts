import { describe, expect, it } from "vitest";
import { runStoreConformance, storeConformanceCases } from "../../src/testing/index.js";

const coreCases = [
  "PutGet",
  "GetMissing",
  "Overwrite",
  "Delete",
  "DeleteMissing",
  "EmptyValueRoundTrips",
  "NamespaceIsolation",
  "ScanOrderedAndPrefixed",
  "ScanWithWildcardPrefix",
  "UpdateRollback",
  "ReadOwnWrites",
  "ViewIsReadOnly",
  "ValueIsolation",
  "Ping",
  "MigrateIdempotent",
  "MigrationRunner",
  "ClosedStore",
  "Concurrency",
];

describe("the kv conformance suite itself", () => {
  it("contains the 18 core cases and the added ones, each once", () => {
    const names = storeConformanceCases.map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(expect.arrayContaining(coreCases));
    expect(names).toEqual(
      expect.arrayContaining([
        "RangeScanWithLimitAndReverse",
        "UnicodeAndNulKeys",
        "LargeValue1MiB",
        "NoLostUpdatesUnderConcurrentUpdates",
        "MigrationReorderAndRemovalDetected",
      ]),
    );
  });

  it("registers one test per case inside one describe", () => {
    const registered: string[] = [];
    const describes: string[] = [];
    runStoreConformance(async () => Promise.reject(new Error("not opened")), {
      describe: (name, fn) => {
        describes.push(name);
        fn();
      },
      it: (name) => registered.push(name),
      name: "probe",
    });
    expect(describes).toEqual(["probe"]);
    expect(registered).toEqual(storeConformanceCases.map((c) => c.name));
  });

  it("refuses to run without describe/it when no globals exist", () => {
    expect(() => runStoreConformance(async () => Promise.reject(new Error("unused")))).toThrow(/describe and it/);
  });
});
