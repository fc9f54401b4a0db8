import { createRequire } from "node:module";
import { MissingDependencyError } from "../errors.js";

const require = createRequire(import.meta.url);

/**
 * Loads an optional CommonJS package synchronously, where a constructor cannot wait.
 * A package that is not installed becomes {@link MissingDependencyError} naming it and
 * `feature` (what needed it); any other load failure is rethrown unchanged.
 */
export function requireOptional<T>(packageName: string, feature: string): T {
  try {
    return require(packageName) as T;
  } catch (err) {
    throw asMissing(err, packageName, feature);
  }
}

/** {@link requireOptional} through `import()`, for code that can wait and packages with an ES module build. */
export async function importOptional<T>(packageName: string, feature: string): Promise<T> {
  try {
    return (await import(packageName)) as T;
  } catch (err) {
    throw asMissing(err, packageName, feature);
  }
}

function asMissing(err: unknown, packageName: string, feature: string): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : "";
  // Only the package itself missing counts: a broken install of one of its own dependencies
  // must surface as it is, not as advice to install the package that is already there.
  if ((code === "MODULE_NOT_FOUND" || code === "ERR_MODULE_NOT_FOUND") && message.includes(`'${packageName}'`)) {
    return new MissingDependencyError(packageName, feature, { cause: err });
  }
  return err;
}
