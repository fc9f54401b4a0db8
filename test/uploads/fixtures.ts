import { randomUUID } from "node:crypto";
import type { NewUploadClaim } from "../../src/uploads/upload-claim.js";
import type { FaultyObjectStore, ObjectStoreMethod } from "../support/faulty-object-store.js";

/** A pending-claim input with a random id and key; override what the test cares about. */
export function newClaim(overrides: Partial<NewUploadClaim> = {}): NewUploadClaim {
  const id = randomUUID();
  return {
    id,
    createdAt: 1_000,
    createdBy: "alice",
    key: `priv/2026/01/01/${id}.bin`,
    size: 10,
    contentType: "application/octet-stream",
    originalFilename: "a.bin",
    public: false,
    partSize: 64 * 1024,
    partCount: 1,
    expiresAt: 100_000,
    ...overrides,
  };
}

/** The backend calls whose order the uploads tests check: a multipart session's lifecycle, and deletes. */
const LIFECYCLE: readonly ObjectStoreMethod[] = ["initMultipart", "completeMultipart", "abortMultipart", "delete"];

/**
 * The {@link LIFECYCLE} calls made on `objects` (only those on `key`, if given) that no injected
 * fault failed, as their method names in call order.
 */
export function lifecycleCalls(objects: FaultyObjectStore, key?: string): ObjectStoreMethod[] {
  return objects.calls
    .filter((c) => LIFECYCLE.includes(c.method) && !c.failed && (key === undefined || c.key === key))
    .map((c) => c.method);
}
