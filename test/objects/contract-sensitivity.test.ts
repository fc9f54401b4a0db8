import { describe, expect, it } from "vitest";
import { ConflictError, NotFoundError } from "../../src/errors.js";
import { MemoryObjectStore } from "../../src/objects/memory-object-store.js";
import type { ObjectInfo, ObjectStore } from "../../src/objects/object-store.js";
import { type ObjectStoreContractGroup, runObjectStoreContract } from "../../src/testing/object-store-contract.js";

// The contract is only worth something if it fails for broken stores: each mutant below breaks
// one rule of the seam, and the named contract case must catch it.

interface Case {
  name: string;
  fn: () => Promise<void>;
}

function collect(open: () => ObjectStore, groups: ObjectStoreContractGroup[]): Case[] {
  const cases: Case[] = [];
  const path: string[] = [];
  runObjectStoreContract(open, {
    groups,
    describe: (name, fn) => {
      path.push(name);
      fn();
      path.pop();
    },
    it: (name, fn) => cases.push({ name: [...path, name].join(" > "), fn }),
  });
  return cases;
}

async function failing(open: () => ObjectStore, groups: ObjectStoreContractGroup[]): Promise<string[]> {
  const failed: string[] = [];
  for (const c of collect(open, groups)) {
    try {
      await c.fn();
    } catch {
      failed.push(c.name);
    }
  }
  return failed;
}

/** A MemoryObjectStore with some methods replaced. */
function mutant(overrides: (inner: MemoryObjectStore) => Partial<ObjectStore>): () => ObjectStore {
  return () => {
    const inner = new MemoryObjectStore({ partSize: 1024 });
    const replaced = overrides(inner);
    return new Proxy(inner, {
      get(target, prop, receiver) {
        const own = replaced[prop as keyof ObjectStore];
        if (own !== undefined) return own;
        const value = Reflect.get(target, prop, receiver);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  };
}

describe("the ObjectStore contract catches broken stores", () => {
  it("the reference store passes every case", async () => {
    expect(
      await failing(() => new MemoryObjectStore({ partSize: 1024 }), ["objects", "list", "conditional", "multipart"]),
    ).toEqual([]);
  });

  it("ignoring ifMatch/ifNoneMatch", async () => {
    const failed = await failing(
      mutant((inner) => ({
        put: (key, body, options) => inner.put(key, body, { ...options, ifMatch: undefined, ifNoneMatch: undefined }),
      })),
      ["conditional"],
    );
    expect(failed.some((n) => n.includes("ifMatch writes only over the given etag"))).toBe(true);
    expect(failed.some((n) => n.includes('ifNoneMatch "*" creates'))).toBe(true);
    expect(failed.some((n) => n.includes("exactly one wins"))).toBe(true);
  });

  it("a list that ignores the cursor", async () => {
    const failed = await failing(
      mutant((inner) => ({ list: (prefix, options) => inner.list(prefix, { limit: options?.limit ?? 1000 }) })),
      ["list"],
    );
    expect(failed.some((n) => n.includes("list pages with a cursor"))).toBe(true);
  });

  it("a list that puts sub-folder keys first (wrong key order)", async () => {
    const failed = await failing(
      mutant((inner) => ({
        list: async (prefix, options) => {
          const page = await inner.list(prefix, options);
          const folderFirst = [...page.objects].sort(
            (a, b) => Number(b.key.includes("/", prefix.length)) - Number(a.key.includes("/", prefix.length)),
          );
          return { ...page, objects: folderFirst };
        },
      })),
      ["list"],
    );
    expect(failed.some((n) => n.includes("plain string prefixes"))).toBe(true);
  });

  it("deleting a missing object failing", async () => {
    const failed = await failing(
      mutant((inner) => ({
        delete: async (key) => {
          if (!(await inner.head(key))) throw new NotFoundError();
          await inner.delete(key);
        },
      })),
      ["objects"],
    );
    expect(failed.some((n) => n.includes("deleting a missing object succeeds"))).toBe(true);
  });

  it("abort that is not idempotent, and putPart that accepts closed uploads", async () => {
    const failed = await failing(
      mutant((inner) => ({
        abortMultipart: async (key, uploadId) => {
          if (uploadId === "no-such-upload") throw new NotFoundError();
          await inner.abortMultipart(key, uploadId);
        },
        putPart: async (key, uploadId, n, body) => {
          try {
            return await inner.putPart(key, uploadId, n, body);
          } catch (err) {
            if (err instanceof NotFoundError) return { etag: "fake", size: 0 };
            throw err;
          }
        },
      })),
      ["multipart"],
    );
    expect(failed.some((n) => n.includes("multipart 8:"))).toBe(true);
    expect(failed.some((n) => n.includes("multipart 7:"))).toBe(true);
    expect(failed.some((n) => n.includes("multipart 9:"))).toBe(true);
  });

  it("completion that ignores its conditions (the multipart CAS hole)", async () => {
    const failed = await failing(
      mutant((inner) => ({
        completeMultipart: (key, uploadId, parts) => inner.completeMultipart(key, uploadId, parts),
      })),
      ["conditional"],
    );
    expect(failed.map((n) => n.replace(/^.* > /, "")).sort()).toEqual([
      "a put landing between initMultipart and completeMultipart is detected",
      "completeMultipart with a stale ifMatch conflicts and keeps the upload open; the current etag completes it",
      "completeMultipart with ifMatch on a missing object conflicts and creates nothing",
      'completeMultipart with ifNoneMatch "*" refuses an existing object and leaves it unchanged',
      "concurrent conditional completions over one etag: exactly one wins",
    ]);
  });

  it("completion that checks its condition before assembling, not atomically with the write", async () => {
    const failed = await failing(
      mutant((inner) => ({
        completeMultipart: async (key, uploadId, parts, options) => {
          const current = await inner.head(key);
          if (options?.ifMatch !== undefined && current?.etag !== options.ifMatch)
            throw new ConflictError("stale", { op: "mutant" });
          if (options?.ifNoneMatch === "*" && current !== null) throw new ConflictError("exists", { op: "mutant" });
          await new Promise((resolve) => setTimeout(resolve, 1));
          return inner.completeMultipart(key, uploadId, parts);
        },
      })),
      ["conditional"],
    );
    expect(failed).toEqual([expect.stringContaining("concurrent conditional completions")]);
  });

  it("completion that leaves the upload open (a second complete succeeds)", async () => {
    const failed = await failing(
      mutant((inner) => {
        const done = new Map<string, ObjectInfo>();
        return {
          completeMultipart: async (key, uploadId, parts) => {
            const previous = done.get(uploadId);
            if (previous) return previous;
            const info = await inner.completeMultipart(key, uploadId, parts);
            done.set(uploadId, info);
            return info;
          },
        };
      }),
      ["multipart"],
    );
    expect(failed.some((n) => n.includes("multipart 6:"))).toBe(true);
  });
});
