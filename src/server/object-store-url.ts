import { fileURLToPath } from "node:url";
import { InvalidArgumentError } from "../errors.js";
import { FileObjectStore, MemoryObjectStore, type ObjectStore } from "../objects/index.js";

/**
 * Opens the object store named by `url`: `file:///abs/dir` (or a plain path), `memory:`.
 * Anything else -> InvalidArgumentError naming the supported schemes.
 */
export async function openObjectStoreUrl(url: string): Promise<ObjectStore> {
  if (url === "memory:" || url === "memory://") return new MemoryObjectStore();
  if (url.startsWith("file://")) return new FileObjectStore({ root: fileURLToPath(url) });
  if (!/^[a-z][a-z0-9+.-]*:/i.test(url)) return new FileObjectStore({ root: url });
  throw new InvalidArgumentError(`unsupported object store URL ${url} (use file:///dir or memory:)`, {
    op: "server.objects",
  });
}
