import { readdirSync } from "node:fs";

/**
 * Runs every `bench/*.bench.ts` (or those whose name contains an argument) one after another
 * in this process. Usage: `npm run bench` or `npm run bench -- engine state`.
 */
const filters = process.argv.slice(2);
const files = readdirSync(new URL(".", import.meta.url))
  .filter((f) => f.endsWith(".bench.ts"))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
for (const file of files) {
  console.log(`\n# ${file}`);
  const mod = (await import(`./${file}`)) as { default: () => Promise<unknown> };
  await mod.default();
}
