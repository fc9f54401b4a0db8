import { expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { AccessDeniedError, ClaimNotFoundError, UniqueViolationError } from "../../src/errors.js";
import { ClaimStore } from "../../src/uploads/claim-store.js";
import { Outbox } from "../../src/uploads/outbox.js";
import { UploadPartStore } from "../../src/uploads/upload-part-store.js";
import { forEachEngine } from "./engines.js";
import { newClaim } from "./fixtures.js";

forEachEngine("ClaimStore", (ctx) => {
  const stores = () => {
    const clock = new ManualClock(5_000);
    const { db } = ctx();
    return { db, clock, claims: new ClaimStore({ database: db, clock }), outbox: new Outbox({ database: db, clock }) };
  };

  it("creates a pending claim and reads it by id and by key", async () => {
    const { claims } = stores();
    const input = newClaim({ public: true, size: 123 });
    const created = await claims.create(input);
    expect(created).toMatchObject({ id: input.id, status: "pending", uploadId: "", public: true, size: 123 });
    expect(await claims.get(input.id)).toEqual(created);
    expect(await claims.getByKey(input.key)).toEqual(created);
  });

  it("reports missing claims as ClaimNotFoundError", async () => {
    const { claims } = stores();
    await expect(claims.get("nope")).rejects.toBeInstanceOf(ClaimNotFoundError);
    await expect(claims.getByKey("nope")).rejects.toBeInstanceOf(ClaimNotFoundError);
    await expect(claims.updateUploadId("nope", "u")).rejects.toBeInstanceOf(ClaimNotFoundError);
    await expect(claims.markUploaded("nope")).rejects.toBeInstanceOf(ClaimNotFoundError);
    await expect(claims.deleteById("nope")).rejects.toBeInstanceOf(ClaimNotFoundError);
  });

  it("rejects a second claim for the same key and keeps the first", async () => {
    const { claims } = stores();
    const first = await claims.create(newClaim());
    await expect(claims.create(newClaim({ key: first.key }))).rejects.toBeInstanceOf(UniqueViolationError);
    expect(await claims.getByKey(first.key)).toEqual(first);
  });

  it("attaches the upload id and flips pending to uploaded only once", async () => {
    const { claims } = stores();
    const c = await claims.create(newClaim());
    await claims.updateUploadId(c.id, "upload-1");
    await claims.markUploaded(c.id);
    expect(await claims.get(c.id)).toMatchObject({ uploadId: "upload-1", status: "uploaded" });
    await expect(claims.markUploaded(c.id)).rejects.toBeInstanceOf(ClaimNotFoundError);
  });

  it("countPending counts pending claims of every owner only", async () => {
    const { claims } = stores();
    const before = await claims.countPending();
    await claims.create(newClaim({ createdBy: "ada" }));
    await claims.create(newClaim({ createdBy: "bob" }));
    const done = await claims.create(newClaim({ createdBy: "ada" }));
    await claims.markUploaded(done.id);
    expect(await claims.countPending()).toBe(before + 2);
  });

  it("consumes uploaded claims of the owner inside the caller's transaction and writes file.claimed", async () => {
    const { db, claims, outbox } = stores();
    const a = await claims.create(newClaim());
    const b = await claims.create(newClaim());
    await claims.markUploaded(a.id);
    await claims.markUploaded(b.id);
    await db.transaction(async (tx) => {
      await claims.consumeMany([a.key, b.key, a.key], "alice", { executor: tx });
    });
    await expect(claims.get(a.id)).rejects.toBeInstanceOf(ClaimNotFoundError);
    await expect(claims.get(b.id)).rejects.toBeInstanceOf(ClaimNotFoundError);
    const events = await outbox.pending();
    expect(events.map((e) => [e.topic, e.payload])).toEqual([
      ["file.claimed", { fileKey: a.key, owner: "alice" }],
      ["file.claimed", { fileKey: b.key, owner: "alice" }],
    ]);
  });

  it("never consumes pending claims, other owners' claims or missing keys, and changes nothing then", async () => {
    const { db, claims, outbox } = stores();
    const mine = await claims.create(newClaim());
    await claims.markUploaded(mine.id);
    const pending = await claims.create(newClaim());
    const theirs = await claims.create(newClaim({ createdBy: "bob" }));
    await claims.markUploaded(theirs.id);
    const errors: unknown[] = [];
    for (const keys of [
      [mine.key, pending.key],
      [mine.key, theirs.key],
      [mine.key, "missing"],
    ]) {
      const err = await db
        .transaction((tx) => claims.consumeMany(keys, "alice", { executor: tx }))
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      errors.push(err);
    }
    for (const err of errors) {
      expect(err).toBeInstanceOf(ClaimNotFoundError);
      // not-found and not-owned are indistinguishable
      expect((err as Error).message).toBe("matched 1 of 2 upload claims");
    }
    expect((await claims.get(mine.id)).status).toBe("uploaded");
    expect((await claims.get(theirs.id)).status).toBe("uploaded");
    expect(await outbox.pending()).toEqual([]);
  });

  it("leaves the claim and no event when the business transaction rolls back", async () => {
    const { db, claims, outbox } = stores();
    const c = await claims.create(newClaim());
    await claims.markUploaded(c.id);
    await expect(
      db.transaction(async (tx) => {
        await claims.consumeMany([c.key], "alice", { executor: tx });
        throw new Error("business failed");
      }),
    ).rejects.toThrow("business failed");
    expect((await claims.get(c.id)).status).toBe("uploaded");
    expect(await outbox.pending()).toEqual([]);
  });

  it("treats an empty key list as a no-op and an empty owner as access denied", async () => {
    const { claims } = stores();
    await claims.consumeMany([], "alice");
    const c = await claims.create(newClaim());
    await claims.markUploaded(c.id);
    await expect(claims.consumeMany([c.key], "")).rejects.toBeInstanceOf(AccessDeniedError);
    expect((await claims.get(c.id)).status).toBe("uploaded");
  });

  it("lets exactly one of many concurrent consumers adopt a claim", async () => {
    const { db, claims } = stores();
    const c = await claims.create(newClaim());
    await claims.markUploaded(c.id);
    const results = await Promise.allSettled(
      Array.from({ length: 12 }, () => db.transaction((tx) => claims.consumeMany([c.key], "alice", { executor: tx }))),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    for (const r of results) if (r.status === "rejected") expect(r.reason).toBeInstanceOf(ClaimNotFoundError);
  });

  it("concurrent consumers of more keys than one statement takes, in opposite orders: one adopts all, the others get ClaimNotFoundError", async () => {
    // Over 500 keys a consume runs several deletes in one transaction: on PostgreSQL two of
    // them locking the same rows chunk by chunk in different orders would deadlock.
    const { db, claims } = stores();
    for (let round = 0; round < 5; round++) {
      const keys = await db.transaction(async (tx) => {
        const out: string[] = [];
        for (let i = 0; i < 1_001; i++) {
          const c = await claims.create(newClaim(), { executor: tx });
          await claims.markUploaded(c.id, { executor: tx });
          out.push(c.key);
        }
        return out;
      });
      const orders = [keys, [...keys].reverse(), [...keys.slice(500), ...keys.slice(0, 500)]];
      const results = await Promise.allSettled(
        orders.map((order) => db.transaction((tx) => claims.consumeMany(order, "alice", { executor: tx }))),
      );
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      for (const r of results) if (r.status === "rejected") expect(r.reason).toBeInstanceOf(ClaimNotFoundError);
      await expect(claims.getByKey(keys[0] as string)).rejects.toBeInstanceOf(ClaimNotFoundError);
    }
  });

  it("scans only expired pending claims, oldest first, and counts pending claims per owner", async () => {
    const { db, claims } = stores();
    const late = await claims.create(newClaim({ expiresAt: 300 }));
    const early = await claims.create(newClaim({ expiresAt: 100 }));
    const uploaded = await claims.create(newClaim({ expiresAt: 50 }));
    await claims.markUploaded(uploaded.id);
    await claims.create(newClaim({ expiresAt: 10_000 }));
    await claims.create(newClaim({ createdBy: "bob", expiresAt: 10_000 }));
    expect((await claims.scanExpired(1_000, 10)).map((c) => c.id)).toEqual([early.id, late.id]);
    expect((await claims.scanExpired(1_000, 1)).map((c) => c.id)).toEqual([early.id]);
    expect(await db.transaction((tx) => claims.lockExpired(1_000, 10, { executor: tx }))).toHaveLength(2);
    expect(await claims.countPendingByOwner("alice")).toBe(3);
    expect(await claims.countPendingByOwner("bob")).toBe(1);
  });

  it("lists the claims of every owner under a prefix, by key, a page at a time", async () => {
    const { claims } = stores();
    const owners = ["acme/org", "acme/users/ada", "acme-2/org", "acmex/users/ada", "globex/org"];
    for (const [i, owner] of owners.entries()) {
      for (const status of ["pending", "uploaded"] as const) {
        const claim = await claims.create(newClaim({ createdBy: owner, key: `priv/2026/01/0${i}/${status}.bin` }));
        if (status === "uploaded") await claims.markUploaded(claim.id);
      }
    }
    const first = await claims.listByOwnerPrefix("acme/", "uploaded", { limit: 1 });
    expect(first.claims.map((c) => c.createdBy)).toEqual(["acme/org"]);
    const rest = await claims.listByOwnerPrefix("acme/", "uploaded", { cursor: first.cursor! });
    expect(rest.claims.map((c) => c.createdBy)).toEqual(["acme/users/ada"]);
    expect(rest.cursor).toBeUndefined();
    expect((await claims.listByOwnerPrefix("acme/", "pending")).claims.map((c) => c.key)).toEqual([
      "priv/2026/01/00/pending.bin",
      "priv/2026/01/01/pending.bin",
    ]);
    // The exact-owner listing is unchanged.
    expect((await claims.listByOwner("acme/org", "uploaded")).claims).toHaveLength(1);
  });

  it("cascades parts when claims are deleted", async () => {
    const { db, claims } = stores();
    const parts = new UploadPartStore({ database: db });
    const a = await claims.create(newClaim());
    const b = await claims.create(newClaim());
    await parts.upsert({ claimId: a.id, partNumber: 1, etag: "e1", size: 5 });
    await parts.upsert({ claimId: b.id, partNumber: 1, etag: "e2", size: 5 });
    expect(await claims.deleteByIds([a.id, "missing"])).toBe(1);
    expect(await parts.listByClaim(a.id)).toEqual([]);
    await claims.deleteById(b.id);
    expect(await parts.listByClaim(b.id)).toEqual([]);
    expect(await claims.existingKeys([a.key, b.key])).toEqual(new Set());
  });
});
