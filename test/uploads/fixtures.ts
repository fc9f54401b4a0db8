import { randomUUID } from "node:crypto";
import type { NewUploadClaim } from "../../src/uploads/upload-claim.js";

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
