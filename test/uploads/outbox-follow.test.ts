import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../../src/errors.js";
import { type Database, openPostgres } from "../../src/sql/index.js";
import { appendEvent, Outbox, type OutboxRecord } from "../../src/uploads/index.js";
import { uploadsMigrations } from "../../src/uploads/uploads-migrations.js";
import { eventually } from "../bus/bus-fixtures.js";
import { createDatabase, dropDatabase, hasPostgres } from "../support/postgres.js";
import { forEachEngine } from "./engines.js";

const deleted = (fileKey: string, owner = "acme/org") =>
  ({ topic: "file.deleted", payload: { fileKey, reason: "deleted", owner } }) as const;

/** Collects what `outbox.follow` yields until `stop()`. */
function follower(outbox: Outbox, afterId: number, options: { owners?: string[] } = {}) {
  const controller = new AbortController();
  const seen: OutboxRecord[] = [];
  const done = (async () => {
    for await (const event of outbox.follow(afterId, { ...options, pollMs: 5, signal: controller.signal }))
      seen.push(event);
  })();
  return {
    seen,
    ids: () => seen.map((e) => e.id),
    async stop() {
      controller.abort();
      await done;
    },
  };
}

forEachEngine("Outbox.follow", (ctx) => {
  it("refuses a poll interval or start id that is not a positive or non-negative integer (0 or NaN polled without pause)", async () => {
    const outbox = new Outbox({ database: ctx().db });
    for (const pollMs of [0, -1, Number.NaN, 1.5]) {
      await expect(outbox.follow(0, { pollMs }).next(), String(pollMs)).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    for (const afterId of [-1, Number.NaN, 1.5]) {
      await expect(outbox.follow(afterId).next(), String(afterId)).rejects.toBeInstanceOf(InvalidArgumentError);
    }
  });

  it("yields every event of concurrent writers exactly once, in id order, scoped by owner", {
    timeout: 30_000,
  }, async () => {
    const { db } = ctx();
    const outbox = new Outbox({ database: db });
    const all = follower(outbox, 0);
    const mine = follower(outbox, 0, { owners: ["acme/users/ada"] });
    // 6 writers, 12 transactions each, each pausing between its insert and its commit.
    await Promise.all(
      Array.from({ length: 6 }, (_, w) =>
        (async () => {
          for (let i = 0; i < 12; i++) {
            await db.transaction(async (tx) => {
              await appendEvent(deleted(`w${w}-${i}`, w % 2 === 0 ? "acme/users/ada" : "acme/org"), {
                executor: tx,
                now: Date.now(),
              });
              await new Promise((r) => setTimeout(r, (w * 7 + i * 3) % 5));
            });
          }
        })(),
      ),
    );
    const ids = (await db.all<{ id: number }>("SELECT id FROM storeroom_upload_outbox ORDER BY id")).map((r) =>
      Number(r.id),
    );
    expect(ids).toHaveLength(72);
    await eventually(() => all.seen.length >= 72, 10_000);
    await eventually(() => mine.seen.length >= 36, 10_000);
    await all.stop();
    await mine.stop();
    expect(all.ids()).toEqual(ids);
    expect(mine.seen.every((e) => e.payload.owner === "acme/users/ada")).toBe(true);
    expect(mine.ids()).toEqual([...mine.ids()].sort((a, b) => a - b));
    expect(new Set(mine.ids()).size).toBe(36);
  });
});

describe.runIf(hasPostgres)("postgres: Outbox.follow with a transaction left open", () => {
  const pgdb = { name: "", url: "" };
  let db: Database;
  beforeAll(async () => {
    Object.assign(pgdb, await createDatabase("outbox_follow"));
    db = await openPostgres(pgdb.url, { max: 5 });
    await db.migrate(uploadsMigrations);
  });
  afterAll(async () => {
    await db?.close();
    if (pgdb.name !== "") await dropDatabase(pgdb.name);
  });

  it("never passes a lower id still in flight: a later id committed first waits until the earlier one commits", async () => {
    const outbox = new Outbox({ database: db });
    const start = await outbox.latestId();
    let commitFirst = () => {};
    const held = new Promise<void>((r) => {
      commitFirst = r;
    });
    let inserted = () => {};
    const firstInserted = new Promise<void>((r) => {
      inserted = r;
    });
    // The first writer takes the lower id and keeps its transaction open.
    const first = db.transaction(async (tx) => {
      await appendEvent(deleted("first"), { executor: tx, now: Date.now() });
      inserted();
      await held;
    });
    await firstInserted;
    await db.transaction((tx) => appendEvent(deleted("second"), { executor: tx, now: Date.now() }));
    const stream = follower(outbox, start);
    const horizon = await outbox.horizon();
    // The second id is visible, the first is not: the horizon is not settled while the first runs.
    expect(horizon.top).toBe(start + 2);
    expect(await outbox.settled(horizon)).toBe(false);
    commitFirst();
    await first;
    // The in-progress list is the whole server's: transactions of other databases (tests running
    // beside this one) must end too before the horizon counts as settled.
    let settled = false;
    await eventually(async () => {
      settled = await outbox.settled(horizon);
      return settled;
    }, 20_000);
    expect(settled).toBe(true);
    await eventually(() => stream.seen.length >= 2, 10_000);
    await stream.stop();
    expect(stream.seen.map((e) => (e.payload as { fileKey: string }).fileKey)).toEqual(["first", "second"]);
    expect(stream.ids()).toEqual([start + 1, start + 2]);
  });
});
