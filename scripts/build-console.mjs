// Bundles the admin console (console/) into dist/console/: one script, one stylesheet and the
// page shell, served by `storeroom serve` at `/`. Fails when the gzipped total passes the budget.
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "dist", "console");
const budgetBytes = 150 * 1024;

mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(root, "console", "src", "main.ts")],
  outfile: join(out, "app.js"),
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2022",
  legalComments: "none",
  logLevel: "warning",
});
copyFileSync(join(root, "console", "app.css"), join(out, "app.css"));
copyFileSync(join(root, "console", "index.html"), join(out, "index.html"));

let gzipped = 0;
for (const file of ["index.html", "app.js", "app.css"]) gzipped += gzipSync(readFileSync(join(out, file))).length;
console.log(`console bundle: ${(gzipped / 1024).toFixed(1)} KB gzipped (budget ${budgetBytes / 1024} KB)`);
if (gzipped > budgetBytes) {
  console.error("console bundle is over its budget");
  process.exit(1);
}
