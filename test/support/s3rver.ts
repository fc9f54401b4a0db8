import { mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ConditionalS3Proxy, startConditionalS3Proxy } from "./conditional-s3-proxy.js";

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  httpServer?: Server;
}
type S3rverConstructor = new (options: Record<string, unknown>) => S3rverInstance;

/** A running s3rver: where to reach it, how to sign for it, and how to stop it. */
export interface S3rverHandle {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  readonly bucket: string;
  readonly region: string;
  /** s3rver's fixed credentials (it verifies SigV4 signatures with them). */
  readonly credentials: { accessKeyId: string; secretAccessKey: string };
  /** The directory s3rver stores buckets in (its on-disk layout, for tests that inspect raw bytes). */
  readonly directory: string;
  /** Options ready for `new S3ObjectStore(...)` (add `partSize` etc. as needed). */
  readonly storeOptions: {
    bucket: string;
    endpoint: string;
    region: string;
    credentials: { accessKeyId: string; secretAccessKey: string };
    forcePathStyle: true;
  };
  /** Closes the server (dropping keep-alive sockets) and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts s3rver on 127.0.0.1 with a random port and a fresh temp directory and creates one
 * bucket. Note: s3rver ignores `If-Match`/`If-None-Match` and most multipart validation; put
 * `startConditionalS3Proxy` in front of it when a test needs those.
 *
 * @example
 * ```ts
 * const s3 = await startS3rver();
 * afterAll(() => s3.stop());
 * const store = new S3ObjectStore({ ...s3.storeOptions, partSize: 64 * 1024 });
 * ```
 */
export async function startS3rver(options: { bucket?: string } = {}): Promise<S3rverHandle> {
  const S3rver = createRequire(import.meta.url)("s3rver") as S3rverConstructor;
  const directory = mkdtempSync(join(tmpdir(), "storeroom-s3rver-"));
  const bucket = options.bucket ?? "storeroom-test";
  const server = new S3rver({
    address: "127.0.0.1",
    port: 0,
    silent: true,
    directory,
    configureBuckets: [{ name: bucket }],
  });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const credentials = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };
  const region = "us-east-1";
  let stopped = false;
  return {
    endpoint,
    bucket,
    region,
    credentials,
    directory,
    storeOptions: { bucket, endpoint, region, credentials, forcePathStyle: true },
    async stop() {
      if (stopped) return;
      stopped = true;
      server.httpServer?.closeAllConnections();
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/** s3rver with the test proxy in front (see conditional-s3-proxy.ts for what it stands in for). */
export interface ProxiedS3rver {
  /** s3rver itself, for tests that talk to it directly or inspect its directory. */
  readonly s3: S3rverHandle;
  readonly proxy: ConditionalS3Proxy;
  /** `s3.storeOptions` aimed at the proxy: what `new S3ObjectStore(...)` needs to behave like S3. */
  readonly storeOptions: S3rverHandle["storeOptions"];
  /** Stops the proxy, then s3rver. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts s3rver and the conditional proxy in front of it.
 *
 * @example
 * ```ts
 * const s3 = await startProxiedS3rver({ bucket: "bench" });
 * const store = new S3ObjectStore({ ...s3.storeOptions, partSize: 5 * MiB });
 * ```
 */
export async function startProxiedS3rver(options: { bucket?: string } = {}): Promise<ProxiedS3rver> {
  const s3 = await startS3rver(options);
  const proxy = await startConditionalS3Proxy(s3.endpoint).catch(async (err: unknown) => {
    await s3.stop();
    throw err;
  });
  return {
    s3,
    proxy,
    storeOptions: { ...s3.storeOptions, endpoint: proxy.endpoint },
    async stop() {
      await proxy.stop();
      await s3.stop();
    },
  };
}
