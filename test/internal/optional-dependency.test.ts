import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isStoreError, MissingDependencyError } from "../../src/errors.js";
import { importOptional, requireOptional } from "../../src/internal/optional-dependency.js";
import { useTempDir } from "../support/temp-dir.js";

const absent = "storeroom-test-package-that-is-not-installed";
const root = useTempDir();

describe("optional dependencies", () => {
  it("load when installed, through require and import", async () => {
    expect(typeof requireOptional<{ Pool: unknown }>("pg", "PostgreSQL").Pool).toBe("function");
    expect(typeof (await importOptional<{ default: { Pool: unknown } }>("pg", "PostgreSQL")).default.Pool).toBe(
      "function",
    );
  });

  it("become MissingDependencyError naming the package and the feature when absent", async () => {
    const viaRequire = (() => {
      try {
        requireOptional(absent, "the frobnicator");
      } catch (err) {
        return err;
      }
    })();
    const viaImport = await importOptional(absent, "the frobnicator").catch((err: unknown) => err);
    for (const err of [viaRequire, viaImport]) {
      expect(err).toBeInstanceOf(MissingDependencyError);
      expect(isStoreError(err, "MISSING_DEPENDENCY")).toBe(true);
      expect((err as MissingDependencyError).packageName).toBe(absent);
      expect((err as Error).message).toBe(
        `the frobnicator needs the optional package "${absent}": run npm install ${absent}`,
      );
      expect((err as Error).cause).toBeInstanceOf(Error);
    }
  });

  it("rethrow a failure inside an installed package unchanged (its own dependency missing)", async () => {
    const dir = join(root, "broken");
    mkdirSync(dir);
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "broken", main: "index.js" }));
    writeFileSync(join(dir, "index.js"), `require("${absent}-inner");`);
    let thrown: unknown;
    try {
      requireOptional(dir, "x");
    } catch (err) {
      thrown = err;
    }
    expect(thrown).not.toBeInstanceOf(MissingDependencyError);
    expect((thrown as { code?: string }).code).toBe("MODULE_NOT_FOUND");
    expect((thrown as Error).message).toContain(`'${absent}-inner'`);
  });
});
