import { execFile } from "node:child_process";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { isStoreError } from "../../src/errors.js";
import { FileObjectStore } from "../../src/objects/file-object-store.js";
import { useTempDir } from "../support/temp-dir.js";

const run = promisify(execFile);
const worker = fileURLToPath(new URL("./fixtures/file-cas-worker.ts", import.meta.url));
const root = useTempDir("storeroom-objects-procs-");

describe("FileObjectStore across processes", () => {
  for (const mode of ["put", "multipart"]) {
    it(`compare-and-swap increments from three processes (${mode === "put" ? "conditional puts" : "conditional completeMultipart"}) and this one lose no update`, async () => {
      const store = new FileObjectStore({ root });
      const counter = `counter-${mode}`;
      await store.put(counter, "0");
      const perWorker = 40;
      const children = Array.from({ length: 3 }, () =>
        run(process.execPath, ["--import", "tsx", worker, root, counter, String(perWorker), mode], { timeout: 60_000 }),
      );
      let local = 0;
      while (local < perWorker) {
        const got = await store.get(counter);
        const chunks: Buffer[] = [];
        for await (const c of got?.body ?? []) chunks.push(c as Buffer);
        try {
          await store.put(counter, String(Number(Buffer.concat(chunks).toString()) + 1), { ifMatch: got?.etag ?? "" });
          local++;
        } catch (err) {
          if (!isStoreError(err, "CONFLICT")) throw err;
        }
      }
      const results = await Promise.all(children);
      const got = await store.get(counter);
      const chunks: Buffer[] = [];
      for await (const c of got?.body ?? []) chunks.push(c as Buffer);
      expect(Number(Buffer.concat(chunks).toString())).toBe(4 * perWorker);
      for (const r of results) expect(JSON.parse(r.stdout)).toHaveProperty("conflicts");
      if (mode === "multipart") expect(await readdir(join(root, "multipart"))).toEqual([]);
      await store.close();
    });
  }
});
