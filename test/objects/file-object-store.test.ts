import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { existsSync, readdirSync, readlinkSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from "node:fs";
import { mkdir, readdir } from "node:fs/promises";
import { syncBuiltinESMExports } from "node:module";
import { hostname } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { Clock } from "../../src/clock.js";
import { isStoreError } from "../../src/errors.js";
import { FileObjectStore, type FileObjectStoreOptions } from "../../src/objects/file-object-store.js";
import { runObjectStoreContract } from "../../src/testing/object-store-contract.js";
import { useTempDir } from "../support/temp-dir.js";

const base = useTempDir("storeroom-objects-file-");
let counter = 0;
const freshRoot = () => join(base, `root-${++counter}`);

// Every case gets a brand-new root, plus a second run where all cases share one root.
runObjectStoreContract(() => new FileObjectStore({ root: freshRoot(), partSize: 1024 }), {
  describe,
  it,
  name: "FileObjectStore contract (fresh root per case)",
});
const sharedRoot = join(base, "shared");
runObjectStoreContract(() => new FileObjectStore({ root: sharedRoot, partSize: 1024 }), {
  describe,
  it,
  name: "FileObjectStore contract (one shared root)",
});

async function text(store: FileObjectStore, key: string): Promise<string | null> {
  const got = await store.get(key);
  if (!got) return null;
  const chunks: Buffer[] = [];
  for await (const c of got.body) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function sha256(s: string | Buffer): string {
  return createHash("sha256").update(s).digest("hex");
}

/**
 * Resolves once a writer of this process tried `times` times to take `lockFile` and found it
 * taken (it fails at once if `finished()` turns true first): proof that the writer is waiting on
 * that lock, not merely not done yet. The real `symlink` runs unchanged; the wrapper only counts
 * its EEXIST refusals (key locks are symbolic links).
 */
async function lockRefusals(lockFile: string, times: number, finished: () => boolean): Promise<void> {
  const real = fs.promises.symlink;
  let refused = 0;
  fs.promises.symlink = async (...args: Parameters<typeof real>) => {
    try {
      return await real(...args);
    } catch (err) {
      if (args[1] === lockFile && (err as NodeJS.ErrnoException).code === "EEXIST") refused += 1;
      throw err;
    }
  };
  syncBuiltinESMExports();
  try {
    const deadline = Date.now() + 10_000;
    while (refused < times) {
      if (finished()) throw new Error(`the writer went through a lock it found taken ${refused} times`);
      if (Date.now() > deadline) throw new Error(`the writer tried the lock ${refused} times, not ${times}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  } finally {
    fs.promises.symlink = real;
    syncBuiltinESMExports();
  }
}

describe("FileObjectStore", () => {
  it("defaults to 4 MiB parts", async () => {
    const store = new FileObjectStore({ root: freshRoot() });
    expect(store.partSize).toBe(4 * 1024 * 1024);
    expect(store.maxPartCount).toBe(Number.POSITIVE_INFINITY);
    await store.close();
  });

  it("rejects bad options with an InvalidArgumentError naming the option", () => {
    expect(() => new FileObjectStore({ root: freshRoot(), staleLockMs: 0 })).toThrow(
      /^staleLockMs must be a positive integer/,
    );
    expect(() => new FileObjectStore({ root: freshRoot(), partSize: -1 })).toThrow(
      /^partSize must be a positive integer/,
    );
    expect(() => new FileObjectStore({ root: freshRoot(), maxPartCount: 0 })).toThrow(
      /^maxPartCount must be a positive integer/,
    );
    expect(() => new FileObjectStore({ root: freshRoot(), clock: 5 as unknown as Clock })).toThrow(
      /^clock must be a Clock \(an object with now\(\)\), got 5/,
    );
    for (const root of ["", undefined, 7]) {
      expect(() => new FileObjectStore({ root } as unknown as FileObjectStoreOptions)).toThrow(
        /^root must be a non-empty string/,
      );
    }
  });

  it("a completed multipart object's etag is a digest of its parts' etags with -N, new with every upload", async () => {
    const store = new FileObjectStore({ root: freshRoot(), partSize: 4 });
    const upload = async () => {
      const id = await store.initMultipart("mp");
      const first = await store.putPart("mp", id, 1, "abcd");
      const second = await store.putPart("mp", id, 2, "ef");
      return (
        await store.completeMultipart("mp", id, [
          { partNumber: 1, etag: first.etag },
          { partNumber: 2, etag: second.etag },
        ])
      ).etag;
    };
    const etag = await upload();
    expect(etag).toMatch(/^[0-9a-f]{64}-2$/);
    expect(etag).not.toContain(createHash("sha256").update("abcdef").digest("hex"));
    expect((await store.head("mp"))?.etag).toBe(etag);
    // The same bytes uploaded again are new parts with new version ids, so a new etag.
    const again = await upload();
    expect(again).toMatch(/-2$/);
    expect(again).not.toBe(etag);
    // A single put of the same bytes gives the content's SHA-256, and the same again.
    const put = await store.put("mp", "abcdef");
    expect(put.etag).toBe(createHash("sha256").update("abcdef").digest("hex"));
    expect((await store.put("mp", "abcdef")).etag).toBe(put.etag);
    await store.close();
  });

  it("keeps a key and its sub-keys apart on disk and prunes emptied folders", async () => {
    const root = freshRoot();
    const store = new FileObjectStore({ root });
    await store.put("a", "file a");
    await store.put("a/b", "file a/b");
    await store.put("a/b/c", "file a/b/c");
    expect(await text(store, "a")).toBe("file a");
    expect(await text(store, "a/b")).toBe("file a/b");
    expect(readdirSync(join(root, "objects")).sort()).toEqual(["a.dir", "a.obj"]);
    await store.delete("a/b/c");
    await store.delete("a/b");
    expect(readdirSync(join(root, "objects")).sort()).toEqual(["a.obj"]);
    await store.close();
  });

  it("etags are the SHA-256 of the content and survive a reopen, as do open uploads", async () => {
    const root = freshRoot();
    const first = new FileObjectStore({ root, partSize: 4 });
    const { etag } = await first.put("k", "abc", { contentType: "text/plain" });
    expect(etag).toBe(sha256("abc"));
    const uploadId = await first.initMultipart("m");
    const p1 = await first.putPart("m", uploadId, 1, "1234");
    await first.close();
    const second = new FileObjectStore({ root, partSize: 4 });
    expect(await second.head("k")).toMatchObject({ etag, size: 3, contentType: "text/plain" });
    const p2 = await second.putPart("m", uploadId, 2, "5");
    await second.completeMultipart("m", uploadId, [
      { partNumber: 1, etag: p1.etag },
      { partNumber: 2, etag: p2.etag },
    ]);
    expect(await text(second, "m")).toBe("12345");
    await second.close();
  });

  it("readers never see a mix of two writes, and an open get keeps its snapshot", async () => {
    const store = new FileObjectStore({ root: freshRoot() });
    const a = Buffer.alloc(512 * 1024, "a");
    const b = Buffer.alloc(512 * 1024, "b");
    await store.put("k", a);
    const snapshot = await store.get("k");
    let writing = true;
    const writer = (async () => {
      for (let i = 0; i < 20; i++) await store.put("k", i % 2 ? a : b);
      writing = false;
    })();
    let reads = 0;
    while (writing || reads < 5) {
      const got = await store.get("k");
      expect(got).not.toBeNull();
      const chunks: Buffer[] = [];
      for await (const c of got?.body ?? []) chunks.push(c as Buffer);
      const bytes = Buffer.concat(chunks);
      expect(bytes.equals(a) || bytes.equals(b)).toBe(true);
      expect(got?.etag).toBe(sha256(bytes));
      reads++;
    }
    await writer;
    const chunks: Buffer[] = [];
    for await (const c of snapshot?.body ?? []) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(a)).toBe(true);
    await store.close();
  });

  it("a body that fails midway writes nothing and leaves no temp file", async () => {
    const root = freshRoot();
    const store = new FileObjectStore({ root });
    await store.put("k", "old");
    async function* broken() {
      yield Buffer.from("partial");
      throw new Error("client went away");
    }
    await expect(store.put("k", broken())).rejects.toThrow("client went away");
    expect(await text(store, "k")).toBe("old");
    expect(await readdir(join(root, "tmp"))).toEqual([]);
    await store.close();
  });

  it("rejects keys that could escape the root without creating anything outside it", async () => {
    const root = freshRoot();
    const store = new FileObjectStore({ root });
    for (const key of ["../escape", "a/../../escape", "/etc/passwd", "..\\escape", "a\0b"]) {
      await expect(store.put(key, "x")).rejects.toSatisfy((err) => isStoreError(err, "INVALID_KEY"));
    }
    await expect(store.put(`${"s".repeat(252)}`, "x")).rejects.toSatisfy((err) => isStoreError(err, "INVALID_KEY"));
    expect(readdirSync(base).some((name) => name.includes("escape"))).toBe(false);
    expect(existsSync(root)).toBe(false);
    await store.close();
  });

  it("conditional writes are atomic across two store instances on one root", async () => {
    const root = freshRoot();
    const one = new FileObjectStore({ root });
    const two = new FileObjectStore({ root });
    for (let round = 0; round < 5; round++) {
      const base = await one.put(`k${round}`, "base");
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => (i % 2 ? one : two).put(`k${round}`, `w${i}`, { ifMatch: base.etag })),
      );
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      const creators = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => (i % 2 ? one : two).put(`new${round}`, `c${i}`, { ifNoneMatch: "*" })),
      );
      expect(creators.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    }
    await one.close();
    await two.close();
  });

  it("waits for another process's key lock file and breaks a stale one", async () => {
    const root = freshRoot();
    const store = new FileObjectStore({ root, staleLockMs: 2_000 });
    await store.put("k", "v0");
    const lockFile = join(root, "locks", `${sha256("k")}.lock`);
    writeFileSync(lockFile, "other process");
    let done = false;
    const waiting = lockRefusals(lockFile, 3, () => done);
    const pending = store.put("k", "v1").then(() => {
      done = true;
    });
    await waiting;
    expect(done).toBe(false);
    expect(await text(store, "k")).toBe("v0");
    const old = (Date.now() - 10_000) / 1000;
    utimesSync(lockFile, old, old);
    await pending;
    expect(await text(store, "k")).toBe("v1");
    expect(existsSync(lockFile)).toBe(false);
    await store.close();
  });

  it("a key lock names its owner in one link: a live owner's is respected, a gone owner's broken at once", async () => {
    const root = freshRoot();
    const store = new FileObjectStore({ root, staleLockMs: 600_000 });
    await store.put("k", "v0");
    const lockFile = join(root, "locks", `${sha256("k")}.lock`);
    const namespace = readlinkSync("/proc/self/ns/pid");
    const gone = spawn(process.execPath, ["-e", ""]);
    await new Promise((resolve) => gone.once("exit", resolve));
    symlinkSync(`${process.ppid} ${hostname()} ${namespace}`, lockFile);
    let done = false;
    const waiting = lockRefusals(lockFile, 3, () => done);
    const pending = store.put("k", "v1").then(() => {
      done = true;
    });
    await waiting;
    expect(done).toBe(false);
    unlinkSync(lockFile);
    symlinkSync(`${gone.pid} ${hostname()} ${namespace}`, lockFile);
    await pending;
    expect(await text(store, "k")).toBe("v1");
    expect(existsSync(lockFile)).toBe(false);
    await store.close();
  });

  it("reads a trailer longer than the tail read at once (a long content type)", async () => {
    const root = freshRoot();
    const store = new FileObjectStore({ root });
    const contentType = `text/plain; x=${"a".repeat(2000)}`;
    await store.put("long", "body", { contentType });
    expect((await store.head("long"))?.contentType).toBe(contentType);
    expect(await text(store, "long")).toBe("body");
    await store.close();
  });

  const builtLocks = fileURLToPath(new URL("../../dist/objects/key-locks.js", import.meta.url));
  it.runIf(existsSync(builtLocks))(
    "respects a live process's key lock and takes over at once the lock of one killed with SIGKILL",
    async () => {
      const root = freshRoot();
      const store = new FileObjectStore({ root, staleLockMs: 600_000 });
      await store.put("k", "v0");
      const lockFile = join(root, "locks", `${sha256("k")}.lock`);
      // A real holder: another process takes the key lock through the built code and never lets go.
      const holder = spawn(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          `const { withKeyLock } = await import(${JSON.stringify(builtLocks)});
          await withKeyLock({ root: ${JSON.stringify(root)}, lockDir: ${JSON.stringify(join(root, "locks"))}, staleLockMs: 600000, waitMs: 1000 },
            "k", "test", () => { console.log("locked"); setInterval(() => {}, 1000); return new Promise(() => {}); });`,
        ],
        { stdio: ["ignore", "pipe", "inherit"] },
      );
      await new Promise<void>((resolve) => holder.stdout?.once("data", () => resolve()));
      let done = false;
      const waiting = lockRefusals(lockFile, 3, () => done);
      const pending = store.put("k", "v1").then(() => {
        done = true;
      });
      await waiting;
      expect(done).toBe(false);
      expect(await text(store, "k")).toBe("v0");
      const exited = new Promise((resolve) => holder.once("exit", resolve));
      holder.kill("SIGKILL");
      await exited;
      await pending;
      expect(await text(store, "k")).toBe("v1");
      expect(existsSync(lockFile)).toBe(false);
      await store.close();
    },
  );

  it("list ignores files it did not write and stays correct while folders are pruned", async () => {
    const root = freshRoot();
    const store = new FileObjectStore({ root });
    await store.put("x/1", "1");
    await mkdir(join(root, "objects", "x.dir"), { recursive: true });
    writeFileSync(join(root, "objects", "x.dir", "stray.txt"), "not mine");
    expect((await store.list("x/")).objects.map((o) => o.key)).toEqual(["x/1"]);
    const keys = Array.from({ length: 30 }, (_, i) => `churn/${i % 5}/${i}`);
    await Promise.all([
      ...keys.map((k) => store.put(k, k).then(() => store.delete(k))),
      ...keys.map(() => store.list("churn/")),
    ]);
    expect((await store.list("churn/")).objects).toEqual([]);
    await store.close();
  });
});

describe("FileObjectStore housekeeping", () => {
  it("invalid keys and list arguments are rejected before the root is even created", async () => {
    const root = freshRoot();
    const store = new FileObjectStore({ root });
    await expect(store.put("../x", "v")).rejects.toSatisfy((err) => isStoreError(err, "INVALID_KEY"));
    await expect(store.get("a//b")).rejects.toSatisfy((err) => isStoreError(err, "INVALID_KEY"));
    await expect(store.list("", { limit: 0 })).rejects.toSatisfy((err) => isStoreError(err, "INVALID_ARGUMENT"));
    expect(existsSync(root)).toBe(false);
    await store.close();
  });

  it("removes temp files older than a day when it opens a root, and keeps recent ones", async () => {
    const root = freshRoot();
    await mkdir(join(root, "tmp"), { recursive: true });
    writeFileSync(join(root, "tmp", "old.tmp"), "crashed writer");
    writeFileSync(join(root, "tmp", "recent.tmp"), "someone writing");
    const old = (Date.now() - 25 * 60 * 60 * 1000) / 1000;
    utimesSync(join(root, "tmp", "old.tmp"), old, old);
    const store = new FileObjectStore({ root });
    await store.head("anything");
    expect(readdirSync(join(root, "tmp"))).toEqual(["recent.tmp"]);
    await store.close();
  });

  it("a part replaced during completion never leaks into the object: completion fails and the upload stays open", async () => {
    for (let round = 0; round < 10; round++) {
      const store = new FileObjectStore({ root: freshRoot(), partSize: 4 });
      const uploadId = await store.initMultipart("m");
      const p1 = await store.putPart("m", uploadId, 1, "1234");
      const p2 = await store.putPart("m", uploadId, 2, "5");
      const [completed, replaced] = await Promise.allSettled([
        store.completeMultipart("m", uploadId, [
          { partNumber: 1, etag: p1.etag },
          { partNumber: 2, etag: p2.etag },
        ]),
        store.putPart("m", uploadId, 1, "abcd"),
      ]);
      if (completed.status === "fulfilled") {
        // The replacement either lost to completion (NotFound) or landed and was discarded.
        if (replaced.status === "rejected") expect(isStoreError(replaced.reason, "NOT_FOUND")).toBe(true);
        expect(await text(store, "m")).toBe("12345");
      } else {
        expect(isStoreError(completed.reason, "INVALID_ARGUMENT")).toBe(true);
        expect(replaced.status).toBe("fulfilled");
        expect(await store.head("m")).toBeNull();
        const etag = replaced.status === "fulfilled" ? replaced.value.etag : "";
        await store.completeMultipart("m", uploadId, [
          { partNumber: 1, etag },
          { partNumber: 2, etag: p2.etag },
        ]);
        expect(await text(store, "m")).toBe("abcd5");
      }
      await store.close();
    }
  });
});

describe("FileObjectStore listing edge cases", () => {
  it("a prefix naming a folder longer than a file name lists nothing instead of failing", async () => {
    const store = new FileObjectStore({ root: freshRoot() });
    await store.put("a/b", "x");
    expect((await store.list(`${"f".repeat(300)}/`)).objects).toEqual([]);
    expect((await store.list("a/")).objects.map((o) => o.key)).toEqual(["a/b"]);
    await store.close();
  });
});
