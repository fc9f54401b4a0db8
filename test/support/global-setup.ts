import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";

/**
 * Makes PostgreSQL available to the suites: uses POSTGRES_URL when set, otherwise starts the
 * machine's cluster (scripts/start-postgres.sh). With CI=true a missing PostgreSQL fails the
 * run; elsewhere the PostgreSQL suites report themselves as not run.
 */
export default function setup(project: TestProject): void {
  let url = process.env.POSTGRES_URL ?? "";
  if (url === "") {
    const script = fileURLToPath(new URL("../../scripts/start-postgres.sh", import.meta.url));
    try {
      url = execFileSync("bash", [script], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
    } catch (err) {
      if (process.env.CI === "true") throw new Error(`PostgreSQL is required in CI but could not be started: ${err}`);
      console.warn("PostgreSQL is not available: PostgreSQL suites will not run");
    }
  }
  project.provide("postgresUrl", url);
}

declare module "vitest" {
  export interface ProvidedContext {
    postgresUrl: string;
  }
}
