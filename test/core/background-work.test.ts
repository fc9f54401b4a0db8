import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const src = join(import.meta.dirname, "..", "..", "src");

/** Files allowed a `setInterval`, with why: none of them drives storage work. */
const ALLOWED: Record<string, string> = {
  "server/routes/state-routes.ts": "an SSE keep-alive comment per open stream",
  "server/routes/event-routes.ts": "an SSE keep-alive comment per open stream",
};

describe("periodic work", () => {
  it("storage work never runs on its own setInterval: it is a BackgroundJob", () => {
    const offenders = readdirSync(src, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile() && e.name.endsWith(".ts"))
      .map((e) => relative(src, join(e.parentPath, e.name)).split("\\").join("/"))
      .filter((path) => path !== "background-job.ts" && ALLOWED[path] === undefined)
      .filter((path) => /\bsetInterval\s*\(/.test(readFileSync(join(src, path), "utf8")));
    expect(offenders).toEqual([]);
  });
});
