import { expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { ClaimNotFoundError, InvalidArgumentError } from "../../src/errors.js";
import { ClaimStore } from "../../src/uploads/claim-store.js";
import { DeleteQueue } from "../../src/uploads/delete-queue.js";
import { Files } from "../../src/uploads/files.js";
import { Outbox } from "../../src/uploads/outbox.js";
import { proxyUrlKeyMapper } from "../../src/uploads/url-key-mapper.js";
import { forEachEngine } from "./engines.js";
import { newClaim } from "./fixtures.js";

interface Post {
  cover?: string | null;
  gallery?: string[];
  attachments?: Record<string, string>;
  body?: string;
  notes?: string;
  sections?: { image: string }[];
}

forEachEngine("Files", (ctx) => {
  const setup = () => {
    const { db } = ctx();
    const clock = new ManualClock(1_000);
    const claims = new ClaimStore({ database: db, clock });
    const queue = new DeleteQueue({ database: db, clock });
    const files = new Files<Post>({
      claims,
      queue,
      fields: {
        cover: "file",
        gallery: "files",
        attachments: "fileRecord",
        body: "richtext",
        notes: "markdown",
        "sections.*.image": "file",
      },
      urlMapper: proxyUrlKeyMapper(),
    });
    const uploaded = async (key: string, owner = "alice") => {
      const c = await claims.create(newClaim({ key, createdBy: owner }));
      await claims.markUploaded(c.id);
    };
    return { db, claims, queue, files, uploaded, outbox: new Outbox({ database: db, clock }) };
  };

  const post: Post = {
    cover: "pub/c.png",
    gallery: ["pub/g1.png", "pub/g2.png", "pub/c.png"],
    attachments: { a: "priv/a.pdf" },
    body: '<p><img src="/storage/files/pub/inline%20one.png"><a href=\'https://x.example/storage/files/priv/doc.pdf\'>d</a><a href="https://elsewhere.example/x.png">x</a></p>',
    notes:
      '![m](/storage/files/pub/md.png "t") and <https://app.example/storage/files/pub/auto.png>\n[ref]: /storage/files/pub/ref.png',
    sections: [{ image: "pub/s1.png" }],
  };
  const allKeys = [
    "pub/c.png",
    "pub/g1.png",
    "pub/g2.png",
    "priv/a.pdf",
    "pub/inline one.png",
    "priv/doc.pdf",
    "pub/md.png",
    "pub/auto.png",
    "pub/ref.png",
    "pub/s1.png",
  ];

  it("extracts keys from strings, arrays, record values, rich text, markdown and nested paths", async () => {
    const { files } = setup();
    expect((await files.keysOf(post)).sort()).toEqual([...allKeys].sort());
    expect(await files.keysOf(null)).toEqual([]);
    await expect(files.keysOf({ cover: 3 as unknown as string })).rejects.toThrow(InvalidArgumentError);
  });

  it("onCreate adopts every referenced upload inside the business transaction", async () => {
    const { db, files, uploaded, claims, outbox } = setup();
    for (const k of allKeys) await uploaded(k);
    await db.transaction((tx) => files.onCreate("alice", post, { executor: tx }));
    expect(await claims.existingKeys(allKeys)).toEqual(new Set());
    expect((await outbox.pending()).filter((e) => e.topic === "file.claimed")).toHaveLength(allKeys.length);
  });

  it("onCreate fails for someone else's upload and the rollback keeps every claim", async () => {
    const { db, files, uploaded, claims, outbox } = setup();
    await uploaded("pub/mine.png");
    await uploaded("pub/theirs.png", "bob");
    await expect(
      db.transaction((tx) =>
        files.onCreate("alice", { gallery: ["pub/mine.png", "pub/theirs.png"] }, { executor: tx }),
      ),
    ).rejects.toBeInstanceOf(ClaimNotFoundError);
    expect(await claims.existingKeys(["pub/mine.png", "pub/theirs.png"])).toEqual(
      new Set(["pub/mine.png", "pub/theirs.png"]),
    );
    expect(await outbox.pending()).toEqual([]);
  });

  it("onUpdate adopts new keys and queues dropped ones as replaced; onDelete queues all as deleted", async () => {
    const { db, files, uploaded, queue } = setup();
    await uploaded("pub/old.png");
    await uploaded("pub/keep.png");
    await uploaded("pub/new.png");
    const before: Post = { cover: "pub/old.png", gallery: ["pub/keep.png"] };
    const after: Post = { cover: "pub/new.png", gallery: ["pub/keep.png"] };
    await db.transaction((tx) => files.onCreate("alice", before, { executor: tx }));
    await db.transaction((tx) => files.onUpdate("alice", before, after, { executor: tx }));
    expect((await queue.list()).map((r) => [r.key, r.reason])).toEqual([["pub/old.png", "replaced"]]);
    await db.transaction((tx) => files.onDelete(after, { executor: tx }));
    expect((await queue.list()).map((r) => `${r.key}:${r.reason}`).sort()).toEqual([
      "pub/keep.png:deleted",
      "pub/new.png:deleted",
      "pub/old.png:replaced",
    ]);
  });

  it("onUpdate rolls back the schedule when adopting fails", async () => {
    const { db, files, uploaded, queue } = setup();
    await uploaded("pub/old.png");
    await db.transaction((tx) => files.onCreate("alice", { cover: "pub/old.png" }, { executor: tx }));
    await expect(
      db.transaction((tx) =>
        files.onUpdate("alice", { cover: "pub/old.png" }, { cover: "pub/not-uploaded.png" }, { executor: tx }),
      ),
    ).rejects.toBeInstanceOf(ClaimNotFoundError);
    expect(await queue.count()).toBe(0);
  });
});

it("proxyUrlKeyMapper maps a relative prefix on any host, and an absolute prefix only on its own origin", () => {
  const relative = proxyUrlKeyMapper("/v1/files/");
  expect(relative.urlToKey("/v1/files/pub/2026/05/14/a.png")).toBe("pub/2026/05/14/a.png");
  expect(relative.urlToKey("https://app.example/v1/files/pub/a%20b.png")).toBe("pub/a b.png");
  expect(relative.urlToKey("/storage/files/pub/a.png")).toBeUndefined();
  const absolute = proxyUrlKeyMapper("https://cdn.example/files/");
  expect(absolute.keyToUrl("pub/a b.png")).toBe("https://cdn.example/files/pub/a%20b.png");
  expect(absolute.urlToKey(absolute.keyToUrl("pub/a b.png"))).toBe("pub/a b.png");
  expect(absolute.urlToKey("https://cdn.example/files/pub/x.png")).toBe("pub/x.png");
  expect(absolute.urlToKey("https://evil.example/files/pub/x.png")).toBeUndefined();
  expect(absolute.urlToKey("/files/pub/x.png")).toBeUndefined();
});
