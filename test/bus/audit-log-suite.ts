import { generateKeyPairSync } from "node:crypto";
import { blake3 } from "@noble/hashes/blake3.js";
import { afterEach, describe, expect, it } from "vitest";
import { AUDIT_GENESIS_HASH, AuditLog } from "../../src/bus/audit-log.js";
import { ManualClock } from "../../src/clock.js";
import type { Database } from "../../src/sql/index.js";
import { migrateBusBefore } from "./bus-fixtures.js";
import type { OpenFresh } from "./message-store-suite.js";

const enc = (s: string) => new TextEncoder().encode(s);
/** An independent BLAKE3 (noble), to check the chain formula without our own hash function. */
const nobleHex = (...parts: Uint8Array[]) => {
  const all = Buffer.concat(parts.map((p) => Buffer.from(p)));
  return Buffer.from(blake3(all)).toString("hex");
};

/** The AuditLog contract, run once per engine. `openSecond` opens another connection to the same database. */
export function describeAuditLog(
  engine: string,
  openFresh: OpenFresh,
  openSecond?: (db: Database) => Promise<Database>,
) {
  describe(`${engine}: AuditLog`, () => {
    const open: Database[] = [];
    afterEach(async () => {
      for (const db of open.splice(0).reverse()) await db.close();
    });
    async function fresh() {
      const db = await openFresh();
      open.push(db);
      return { db, audit: await AuditLog.open({ database: db, clock: new ManualClock(5) }) };
    }
    const keys = generateKeyPairSync("ed25519");

    it("genesis is hex(BLAKE3('')) and each link is BLAKE3(prev hex ASCII || event)", async () => {
      expect(AUDIT_GENESIS_HASH).toBe(nobleHex(new Uint8Array()));
      const { audit } = await fresh();
      expect(await audit.verify()).toBeNull();
      expect(await audit.last()).toBeUndefined();
      const a = await audit.append(enc('{"event":"send","id":"m1","from":"a","to":"b"}'));
      const b = await audit.append(enc("second"));
      expect(a).toMatchObject({ seq: 0, prevHash: AUDIT_GENESIS_HASH, ts: 5 });
      expect(a.hash).toBe(nobleHex(enc(AUDIT_GENESIS_HASH), enc('{"event":"send","id":"m1","from":"a","to":"b"}')));
      expect(b).toMatchObject({ seq: 1, prevHash: a.hash, hash: nobleHex(enc(a.hash), enc("second")) });
      expect(await audit.count()).toBe(2);
      expect((await audit.last())?.seq).toBe(1);
      const rows = await audit.rows();
      expect(rows.map((r) => Buffer.from(r.event).toString())).toEqual([
        '{"event":"send","id":"m1","from":"a","to":"b"}',
        "second",
      ]);
      expect(await audit.verify()).toBeNull();
    });

    it("concurrent appends keep one unforked chain", async () => {
      const { audit } = await fresh();
      await Promise.all(Array.from({ length: 60 }, (_, i) => audit.append(enc(`e${i}`))));
      await audit.appendMany([enc("x"), enc("y")]);
      const rows = await audit.rows();
      expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => i));
      expect(await audit.verify()).toBeNull();
    });

    it("appends inside the caller's transaction commit and roll back with it, interleaved with its own appends", async () => {
      const { db, audit } = await fresh();
      await db.transaction(async (tx) => {
        await tx.run("CREATE TABLE side (n INTEGER)");
        await audit.appendMany([enc("in-tx-1"), enc("in-tx-2")], { executor: tx });
      });
      await expect(
        db.transaction(async (tx) => {
          await audit.appendMany([enc("rolled-back")], { executor: tx });
          throw new Error("abort");
        }),
      ).rejects.toThrow("abort");
      // Appends of its own and appends in callers' transactions, all at once.
      await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          i % 2 === 0
            ? audit.append(enc(`own-${i}`))
            : db.transaction((tx) => audit.appendMany([enc(`tx-${i}`)], { executor: tx })),
        ),
      );
      const events = (await audit.rows()).map((r) => Buffer.from(r.event).toString());
      expect(events.slice(0, 2)).toEqual(["in-tx-1", "in-tx-2"]);
      expect(events).not.toContain("rolled-back");
      expect(events).toHaveLength(42);
      expect(await audit.verify()).toBeNull();
    });

    it("a large append is written in several statements and stays one chain", async () => {
      const { audit } = await fresh();
      const rows = await audit.appendMany(Array.from({ length: 343 }, (_, i) => enc(`e${i}`)));
      expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => i));
      expect(await audit.count()).toBe(343);
      expect(await audit.verify()).toBeNull();
    });

    if (openSecond !== undefined) {
      it("two handles on one database (two processes) still append one chain", async () => {
        const { db, audit } = await fresh();
        const other = await openSecond(db);
        open.push(other);
        const audit2 = await AuditLog.open({ database: other });
        await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? audit : audit2).append(enc(`e${i}`))));
        expect(await audit.count()).toBe(40);
        expect(await audit.verify()).toBeNull();
      });
    }

    it("a log written before the table was keyed by seq keeps its chain and grows on", async () => {
      const db = await openFresh();
      open.push(db);
      await migrateBusBefore(db, "bus/005");
      const old = await AuditLog.open({ database: db, migrate: false, clock: new ManualClock(5) });
      await old.appendMany(Array.from({ length: 30 }, (_, i) => enc(`old${i}`)));
      const rows = await old.rows();
      const audit = await AuditLog.open({ database: db, clock: new ManualClock(6) });
      expect(await audit.rows()).toEqual(rows);
      expect(await audit.verify()).toBeNull();
      await audit.appendMany([enc("new0"), enc("new1")]);
      expect(await audit.count()).toBe(32);
      expect((await audit.last())?.prevHash).toBe((await audit.rows())[30]?.hash);
      expect(await audit.verify()).toBeNull();
      // The key still refuses a second row at a chain position.
      await expect(
        db.run("INSERT INTO bus_audit (seq, prev_hash, hash, event, ts) VALUES (3, 'a', 'b', $1, 0)", [enc("x")]),
      ).rejects.toThrow();
    });

    it("finds a tampered event, a wrong prev_hash and a missing row", async () => {
      const { db, audit } = await fresh();
      for (let i = 0; i < 5; i++) await audit.append(enc(`e${i}`));
      await db.run("UPDATE bus_audit SET event = $1 WHERE seq = 2", [enc("evil")]);
      expect(await audit.verify()).toMatchObject({ index: 2, seq: 2, detail: expect.stringContaining("tampered") });
      await db.run("UPDATE bus_audit SET event = $1 WHERE seq = 2", [enc("e2")]);
      expect(await audit.verify()).toBeNull();
      await db.run("UPDATE bus_audit SET prev_hash = $1 WHERE seq = 3", [AUDIT_GENESIS_HASH]);
      expect(await audit.verify()).toMatchObject({ index: 3, seq: 3, detail: expect.stringContaining("prev_hash") });
      await db.run("DELETE FROM bus_audit WHERE seq = 1");
      expect(await audit.verify()).toMatchObject({ index: 1, seq: 2, detail: expect.stringContaining("missing") });
    });

    it("a signed checkpoint catches truncation and full rewrites", async () => {
      const { db, audit } = await fresh();
      for (let i = 0; i < 5; i++) await audit.append(enc(`e${i}`));
      const cp = await audit.checkpoint(keys.privateKey);
      expect(cp).toMatchObject({ seq: 4, hash: (await audit.last())?.hash });
      await audit.append(enc("later"));
      expect(await audit.verify({ checkpoint: cp, publicKey: keys.publicKey })).toBeNull();
      // Truncation below the checkpoint leaves a valid chain that no longer reaches it.
      await db.run("DELETE FROM bus_audit WHERE seq >= 3");
      expect(await audit.verify()).toBeNull();
      expect(await audit.verify({ checkpoint: cp, publicKey: keys.publicKey })).toMatchObject({
        seq: 4,
        detail: expect.stringContaining("truncated"),
      });
      // A full rewrite: a fresh, internally valid chain with other content.
      await db.run("DELETE FROM bus_audit");
      for (let i = 0; i < 6; i++) await audit.append(enc(`forged${i}`));
      expect(await audit.verify()).toBeNull();
      expect(await audit.verify({ checkpoint: cp, publicKey: keys.publicKey })).toMatchObject({
        seq: 4,
        detail: expect.stringContaining("rewritten"),
      });
    });

    it("a checkpoint signed by another key, or edited, does not verify", async () => {
      const { audit } = await fresh();
      await audit.append(enc("e0"));
      const cp = await audit.checkpoint(keys.privateKey);
      const stranger = generateKeyPairSync("ed25519");
      expect(await audit.verify({ checkpoint: cp, publicKey: stranger.publicKey })).toMatchObject({
        detail: expect.stringContaining("signature"),
      });
      const pem = keys.publicKey.export({ type: "spki", format: "pem" }).toString();
      expect(await audit.verify({ checkpoint: { ...cp, seq: 0, hash: "00" }, publicKey: pem })).toMatchObject({
        detail: expect.stringContaining("signature"),
      });
      await expect(audit.verify({ checkpoint: cp })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    });

    it("verify reports each checked row against the starting count and returns the same result", async () => {
      const { audit } = await fresh();
      await audit.appendMany(["a", "b", "c"].map(enc));
      const calls: [number, number | undefined][] = [];
      expect(await audit.verify({ onProgress: (d, t) => calls.push([d, t]) })).toBeNull();
      expect(calls).toEqual([
        [1, 3],
        [2, 3],
        [3, 3],
      ]);
      const empty = await fresh();
      const none: number[] = [];
      expect(await empty.audit.verify({ onProgress: (d) => none.push(d) })).toBeNull();
      expect(none).toEqual([]);
    });

    it("rejects non-byte events, checkpoints of an empty log, and calls after close", async () => {
      const { audit } = await fresh();
      await expect(audit.append("text" as unknown as Uint8Array)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      await expect(audit.checkpoint(keys.privateKey)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      expect(await audit.count()).toBe(0);
      await audit.close();
      await expect(audit.append(enc("x"))).rejects.toMatchObject({ code: "CLOSED" });
      await expect(audit.verify()).rejects.toMatchObject({ code: "CLOSED" });
    });

    it("a clock with fractional milliseconds appends on every engine, in whole ms", async () => {
      const db = await openFresh();
      open.push(db);
      const audit = await AuditLog.open({ database: db, clock: new ManualClock(1_000.75) });
      expect((await audit.append(enc("x"))).ts).toBe(1_000);
      expect((await audit.last())?.ts).toBe(1_000);
      expect(await audit.verify()).toBeNull();
    });

    it("a key that is not PEM is an InvalidArgumentError, for signing and for verifying", async () => {
      const { audit } = await fresh();
      await audit.append(enc("x"));
      await expect(audit.checkpoint("not a key")).rejects.toMatchObject({
        code: "INVALID_ARGUMENT",
        message: expect.stringMatching(/private key/),
      });
      const checkpoint = await audit.checkpoint(keys.privateKey);
      await expect(audit.verify({ checkpoint, publicKey: enc("not a key") })).rejects.toMatchObject({
        code: "INVALID_ARGUMENT",
        message: expect.stringMatching(/public key/),
      });
    });
  });
}
