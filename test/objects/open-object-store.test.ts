import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isStoreError } from "../../src/errors.js";
import { FileObjectStore } from "../../src/objects/file-object-store.js";
import { MemoryObjectStore } from "../../src/objects/memory-object-store.js";
import { openObjectStore } from "../../src/objects/open-object-store.js";
import { S3ObjectStore } from "../../src/objects/s3-object-store.js";
import { type S3rverHandle, startS3rver } from "../support/s3rver.js";
import { useTempDir } from "../support/temp-dir.js";

const dir = useTempDir("storeroom-open-objects-");
let s3: S3rverHandle;
beforeAll(async () => {
  s3 = await startS3rver();
});
afterAll(() => s3?.stop());

async function roundTrip(url: string, env?: Record<string, string>) {
  const store = await openObjectStore(url, env ? { env } : {});
  await store.put("probe/k", "value");
  const got = await store.get("probe/k");
  const chunks: Buffer[] = [];
  for await (const c of got?.body ?? []) chunks.push(c as Buffer);
  expect(Buffer.concat(chunks).toString()).toBe("value");
  return store;
}

describe("openObjectStore", () => {
  it("memory: opens a MemoryObjectStore, with an optional partSize", async () => {
    const store = await roundTrip("memory:");
    expect(store).toBeInstanceOf(MemoryObjectStore);
    expect((await openObjectStore("memory:?partSize=2048")).partSize).toBe(2048);
  });

  it("file: URLs and plain paths open a FileObjectStore rooted there", async () => {
    const byUrl = await roundTrip(`${pathToFileURL(join(dir, "by-url")).href}?partSize=4096`);
    expect(byUrl).toBeInstanceOf(FileObjectStore);
    expect(byUrl.partSize).toBe(4096);
    expect(existsSync(join(dir, "by-url", "objects", "probe.dir", "k.obj"))).toBe(true);
    const byPath = await roundTrip(join(dir, "by-path"));
    expect(byPath).toBeInstanceOf(FileObjectStore);
    expect(existsSync(join(dir, "by-path", "objects", "probe.dir", "k.obj"))).toBe(true);
  });

  it("s3: URLs with query credentials reach s3rver", async () => {
    const url = `s3://${s3.bucket}?endpoint=${encodeURIComponent(s3.endpoint)}&region=us-east-1&forcePathStyle=true&accessKeyId=S3RVER&secretAccessKey=S3RVER&partSize=65536`;
    const store = await roundTrip(url);
    expect(store).toBeInstanceOf(S3ObjectStore);
    expect(store.partSize).toBe(65536);
    expect(store.maxPartCount).toBe(10_000);
    await store.close();
  });

  it("s3: URLs take credentials, region and endpoint from AWS_* variables", async () => {
    const store = await roundTrip(`s3://${s3.bucket}?forcePathStyle=true`, {
      AWS_ACCESS_KEY_ID: "S3RVER",
      AWS_SECRET_ACCESS_KEY: "S3RVER",
      AWS_REGION: "us-east-1",
      AWS_ENDPOINT_URL_S3: s3.endpoint,
    });
    await store.close();
  });

  it("bad URLs are InvalidArgumentError", async () => {
    for (const url of [
      "",
      "ftp://host/x",
      "s3://",
      "s3://bucket/prefix",
      "s3://bucket?accessKeyId=only",
      "s3://bucket?forcePathStyle=maybe",
      "memory:?partSize=0",
      "memory:?partsize=1024",
    ]) {
      await expect(openObjectStore(url, { env: {} }), url).rejects.toSatisfy((err) =>
        isStoreError(err, "INVALID_ARGUMENT"),
      );
    }
  });
});
