import { existsSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";

/** Debian's Chromium, which CI installs (.ci/run). */
const chromiumPath = "/usr/bin/chromium";

const consoleBundle = join(import.meta.dirname, "..", "..", "dist", "console", "app.js");

/**
 * Whether the browser suites run: on CI always (a missing browser or bundle must fail there,
 * never skip); elsewhere when Chromium is installed and, with `needsConsole`, the console
 * bundle is built (`npm run build`).
 */
export function browserSuitesRun(needsConsole = false): boolean {
  if (process.env.CI === "true") return true;
  return existsSync(chromiumPath) && (!needsConsole || existsSync(consoleBundle));
}

/** Headless Chromium as every browser suite launches it. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
}
