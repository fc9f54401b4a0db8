import { MissingDependencyError } from "../errors.js";
import { importOptional } from "../internal/optional-dependency.js";

/** The optional packages the server runs on, loaded by {@link loadServerPackages}. */
export interface ServerPackages {
  readonly fastify: typeof import("fastify").default;
  readonly promClient: typeof import("prom-client");
}

/** What `npm install` needs for the server, beside storeroom itself. */
export const SERVER_PACKAGES = Object.freeze(["fastify", "ws", "prom-client"]);

/**
 * Loads fastify and prom-client, and checks ws (which the bus route loads itself). Every
 * missing one is named in a single {@link MissingDependencyError}, so one `npm install` line
 * fixes them all.
 */
export async function loadServerPackages(): Promise<ServerPackages> {
  const feature = "the storeroom server";
  const settled = await Promise.allSettled([
    importOptional<{ default: ServerPackages["fastify"] }>("fastify", feature),
    importOptional<ServerPackages["promClient"]>("prom-client", feature),
    importOptional<unknown>("ws", feature),
  ]);
  const missing: string[] = [];
  for (const [i, result] of settled.entries()) {
    if (result.status === "rejected") {
      if (!(result.reason instanceof MissingDependencyError)) throw result.reason;
      missing.push(SERVER_PACKAGES[i] as string);
    }
  }
  if (missing.length > 0) throw new MissingDependencyError(missing, feature);
  const [fastify, promClient] = settled as unknown as [
    PromiseFulfilledResult<{ default: ServerPackages["fastify"] }>,
    PromiseFulfilledResult<ServerPackages["promClient"]>,
  ];
  return { fastify: fastify.value.default, promClient: promClient.value };
}
