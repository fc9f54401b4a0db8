import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/**
 * What installing and importing the published package costs, measured on a packed tarball:
 * `npx tsx bench/package-footprint.ts [storeroom-x.tgz] [--runs 3]`. Without a tarball it packs
 * the current build. For each install profile (memory-only: the package alone; server: the
 * package and the optional peers `storeroom serve` needs), it installs into an empty folder
 * `runs` times (npm cache warm after the first) and reports the median wall time and the size
 * of node_modules; then, in the server install, the median cold `import()` time of the root
 * and of every subpath, each in a fresh process. Writes bench/results/package-footprint.json.
 */
const args = process.argv.slice(2);
const runsAt = args.indexOf("--runs");
const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : 3;
const importRuns = 11;
const work = mkdtempSync(join(tmpdir(), "storeroom-footprint-"));
const tarball = resolve(args.find((a) => a.endsWith(".tgz")) ?? pack());

const manifest = JSON.parse(execFileSync("tar", ["-xzOf", tarball, "package/package.json"], { encoding: "utf8" })) as {
  version: string;
  exports: Record<string, unknown>;
  peerDependencies?: Record<string, string>;
};
const serverPeers = ["fastify", "ws", "prom-client"].filter((p) => manifest.peerDependencies?.[p] !== undefined);
// Before the peers were optional, the server needed nothing beyond the package itself.
const profiles: Record<string, string[]> =
  serverPeers.length === 0 ? { "memory-only": [] } : { "memory-only": [], server: serverPeers };

function pack(): string {
  const out = execFileSync("npm", ["pack", "--silent", "--pack-destination", work], { encoding: "utf8" });
  return join(work, out.trim().split("\n").pop() as string);
}

function du(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += du(path);
    else if (entry.isFile()) total += statSync(path).size;
  }
  return total;
}

function countPackages(dir: string): number {
  const out = spawnSync("npm", ["ls", "--all", "--parseable"], { cwd: dir, encoding: "utf8" }).stdout;
  return out.trim().split("\n").length - 1;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function install(profile: string, run: number): { dir: string; seconds: number; bytes: number } {
  const dir = join(work, `${profile}-${run}`);
  mkdirSync(dir);
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "footprint", private: true, type: "module" }));
  const started = performance.now();
  execFileSync("npm", ["i", "--no-audit", "--no-fund", "--silent", tarball, ...(profiles[profile] ?? [])], {
    cwd: dir,
    stdio: "inherit",
  });
  const seconds = (performance.now() - started) / 1000;
  return { dir, seconds, bytes: du(join(dir, "node_modules")) };
}

function importMs(dir: string, specifier: string): number {
  const samples: number[] = [];
  for (let i = 0; i < importRuns; i++) {
    const r = spawnSync(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `const t = performance.now(); await import(${JSON.stringify(specifier)}); console.log(performance.now() - t);`,
      ],
      { cwd: dir, encoding: "utf8" },
    );
    if (r.status !== 0) throw new Error(`import ${specifier} failed: ${r.stderr}`);
    samples.push(Number(r.stdout.trim()));
  }
  return median(samples);
}

const report: Record<string, unknown> = { tarball, version: manifest.version, node: process.version, runs };
let serverDir = "";
for (const profile of Object.keys(profiles)) {
  const results = Array.from({ length: runs }, (_, run) => install(profile, run));
  serverDir = (results.at(-1) as { dir: string }).dir;
  report[profile] = {
    packages: ["storeroom", ...(profiles[profile] ?? [])],
    installSecondsMedian: Number(median(results.map((r) => r.seconds)).toFixed(1)),
    installSecondsFirst: Number((results[0] as { seconds: number }).seconds.toFixed(1)),
    nodeModulesMiB: Number(((results.at(-1) as { bytes: number }).bytes / 2 ** 20).toFixed(1)),
    packagesInstalled: countPackages((results.at(-1) as { dir: string }).dir),
  };
}
const subpaths = Object.keys(manifest.exports).filter((k) => k !== "./package.json");
report.importMsMedian = Object.fromEntries(
  subpaths.map((k) => {
    const specifier = k === "." ? "storeroom" : `storeroom/${k.slice(2)}`;
    return [specifier, Number(importMs(serverDir, specifier).toFixed(0))];
  }),
);
console.log(JSON.stringify(report, null, 2));
mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
writeFileSync(new URL("./results/package-footprint.json", import.meta.url), `${JSON.stringify(report, null, 2)}\n`);
rmSync(work, { recursive: true, force: true });
