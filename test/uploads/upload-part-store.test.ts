import { expect, it } from "vitest";
import { ConstraintError } from "../../src/errors.js";
import { ClaimStore } from "../../src/uploads/claim-store.js";
import { UploadPartStore } from "../../src/uploads/upload-part-store.js";
import { forEachEngine } from "./engines.js";
import { newClaim } from "./fixtures.js";

forEachEngine("UploadPartStore", (ctx) => {
  it("upserts by (claim, part number), last writer wins, lists in part order", async () => {
    const { db } = ctx();
    const claims = new ClaimStore({ database: db });
    const parts = new UploadPartStore({ database: db });
    const c = await claims.create(newClaim({ partCount: 3 }));
    await parts.upsert({ claimId: c.id, partNumber: 3, etag: "c", size: 1 });
    await parts.upsert({ claimId: c.id, partNumber: 1, etag: "a", size: 4 });
    await parts.upsert({ claimId: c.id, partNumber: 1, etag: "a2", size: 4 });
    await Promise.all([2, 2, 2].map((n, i) => parts.upsert({ claimId: c.id, partNumber: n, etag: `b${i}`, size: 4 })));
    const listed = await parts.listByClaim(c.id);
    expect(listed.map((p) => p.partNumber)).toEqual([1, 2, 3]);
    expect(listed[0]?.etag).toBe("a2");
    expect(await parts.deleteByClaim(c.id)).toBe(3);
    expect(await parts.listByClaim(c.id)).toEqual([]);
  });

  it("rejects a part of an unknown claim", async () => {
    const { db } = ctx();
    const parts = new UploadPartStore({ database: db });
    await expect(parts.upsert({ claimId: "missing", partNumber: 1, etag: "e", size: 1 })).rejects.toBeInstanceOf(
      ConstraintError,
    );
  });
});
