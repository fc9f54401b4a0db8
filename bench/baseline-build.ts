import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, renameSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** A build of another commit's `src`, for a bench that runs it beside today's code. */
export interface BaselineBuild {
  /** The commit built. */
  readonly sha: string;
  /** Its `dist/` directory. */
  readonly dist: string;
}

/**
 * Builds the `src` of commit `rev` (e.g. `c8129ab^`) once into a directory of the system's
 * temp dir named after the commit: `git archive`, compiled with this tree's TypeScript and
 * `node_modules` (linked, so nothing is downloaded). Type errors against today's dependencies
 * do not stop the build as long as tsc emitted `needs` (a path under `dist/`).
 */
export function buildBaseline(rev: string, needs: string): BaselineBuild {
  const root = fileURLToPath(new URL("../", import.meta.url));
  const sha = execFileSync("git", ["-C", root, "rev-parse", "--verify", `${rev}^{commit}`], {
    encoding: "utf8",
  }).trim();
  const target = join(tmpdir(), `storeroom-baseline-${sha}`);
  if (!existsSync(join(target, "dist", needs))) {
    const staging = mkdtempSync(`${target}-`);
    const archive = execFileSync(
      "git",
      ["-C", root, "archive", "--format=tar", sha, "src", "tsconfig.json", "tsconfig.build.json", "package.json"],
      { maxBuffer: 1 << 28 },
    );
    execFileSync("tar", ["-x", "-C", staging], { input: archive });
    symlinkSync(join(root, "node_modules"), join(staging, "node_modules"), "dir");
    try {
      execFileSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"], {
        cwd: staging,
        stdio: "ignore",
      });
    } catch {
      // tsc exits non-zero on type errors but still emits; checked below.
    }
    if (!existsSync(join(staging, "dist", needs))) throw new Error(`building ${needs} of ${rev} failed`);
    rmSync(target, { recursive: true, force: true });
    renameSync(staging, target);
  }
  return { sha, dist: join(target, "dist") };
}
