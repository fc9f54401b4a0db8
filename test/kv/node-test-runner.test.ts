import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { storeConformanceCases } from "../../src/testing/index.js";

const run = promisify(execFile);

describe("runStoreConformance under node:test", () => {
  it("registers and passes every case with node's own describe/it", async () => {
    const fixture = fileURLToPath(new URL("./fixtures/node-test-conformance.ts", import.meta.url));
    const { stdout } = await run(process.execPath, ["--import", "tsx", "--test", "--test-reporter=tap", fixture], {
      cwd: fileURLToPath(new URL("../..", import.meta.url)),
    });
    expect(stdout).toContain(`# pass ${storeConformanceCases.length}`);
    expect(stdout).toContain("# fail 0");
    expect(storeConformanceCases.length).toBeGreaterThanOrEqual(30);
  }, 60_000);
});
