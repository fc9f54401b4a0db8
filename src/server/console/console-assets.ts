import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The built console: the page shell, its script and its stylesheet. */
export interface ConsoleAssets {
  readonly html: Buffer;
  readonly script: Buffer;
  readonly styles: Buffer;
}

/**
 * Where `npm run build` puts the console bundle: `dist/console/`, beside the compiled server
 * (`dist/server/console/` -> `dist/console/`) or, when the server runs from source, under the
 * package root.
 */
const candidates = [new URL("../../console/", import.meta.url), new URL("../../../dist/console/", import.meta.url)];

/** Reads the console bundle, or `undefined` when it has not been built. */
export function loadConsoleAssets(): ConsoleAssets | undefined {
  for (const dir of candidates) {
    const path = fileURLToPath(new URL("app.js", dir));
    if (!existsSync(path)) continue;
    return {
      html: readFileSync(fileURLToPath(new URL("index.html", dir))),
      script: readFileSync(path),
      styles: readFileSync(fileURLToPath(new URL("app.css", dir))),
    };
  }
  return undefined;
}
