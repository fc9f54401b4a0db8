import { afterAll, beforeAll } from "vitest";
import { type ProxiedS3rver, startProxiedS3rver } from "./s3rver.js";

/**
 * Starts s3rver behind the conditional proxy before the file's (or describe block's) tests and
 * stops both after them. The returned object is filled in by `beforeAll`: read its fields
 * inside tests, not at registration time.
 */
export function useProxiedS3rver(options: { bucket?: string } = {}): ProxiedS3rver {
  const handle = {} as { -readonly [K in keyof ProxiedS3rver]: ProxiedS3rver[K] };
  beforeAll(async () => {
    Object.assign(handle, await startProxiedS3rver(options));
  });
  afterAll(async () => {
    await handle.stop?.();
  });
  return handle;
}
