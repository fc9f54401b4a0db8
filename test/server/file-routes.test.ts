import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FileObjectStore } from "../../src/objects/file-object-store.js";
import { useTempDir } from "../support/temp-dir.js";
import { auth, startServer, tokens } from "./server-fixture.js";

interface Done {
  key: string;
  url: string;
  size: number;
  claimId: string;
}

describe("files API", async () => {
  const dir = useTempDir();
  const server = await startServer(dir, { uploads: { allowPublic: true }, intervals: { deleteMs: 20 } });
  const base = await server.listen();
  const objects = new FileObjectStore({ root: join(dir, "objects") });

  const upload = async (token: string, filename: string, bytes: Buffer, extra: Record<string, unknown> = {}) => {
    const init = (await (
      await fetch(`${base}/v1/uploads`, {
        method: "POST",
        headers: { ...auth(token), "content-type": "application/json" },
        body: JSON.stringify({ filename, size: bytes.length, ...extra }),
      })
    ).json()) as { claimId: string; partSize: number; partCount: number };
    for (let n = 1; n <= init.partCount; n++) {
      const res = await fetch(`${base}/v1/uploads/${init.claimId}/parts/${n}`, {
        method: "PUT",
        headers: auth(token),
        body: bytes.subarray((n - 1) * init.partSize, n * init.partSize),
      });
      expect(res.status).toBe(200);
    }
    const done = await fetch(`${base}/v1/uploads/${init.claimId}/complete`, { method: "POST", headers: auth(token) });
    expect(done.status).toBe(200);
    return { ...((await done.json()) as Done), claimId: init.claimId };
  };

  it("serves byte ranges (206), suffix and open ranges, 416 past the end, and the whole file for several ranges", async () => {
    const bytes = randomBytes(100_000);
    const file = await upload(tokens.ada, "data.bin", bytes);
    const get = (range: string, extra: Record<string, string> = {}) =>
      fetch(`${base}${file.url}`, { headers: { ...auth(tokens.ada), range, ...extra } });
    const mid = await get("bytes=10-19");
    expect(mid.status).toBe(206);
    expect(mid.headers.get("content-range")).toBe("bytes 10-19/100000");
    expect(mid.headers.get("content-length")).toBe("10");
    expect(Buffer.from(await mid.arrayBuffer())).toEqual(bytes.subarray(10, 20));
    const suffix = await get("bytes=-5");
    expect(suffix.headers.get("content-range")).toBe("bytes 99995-99999/100000");
    expect(Buffer.from(await suffix.arrayBuffer())).toEqual(bytes.subarray(99_995));
    const open = await get("bytes=99990-");
    expect(Buffer.from(await open.arrayBuffer())).toEqual(bytes.subarray(99_990));
    const clamped = await get("bytes=99999-200000");
    expect(clamped.headers.get("content-range")).toBe("bytes 99999-99999/100000");
    // A last position past any safe integer is still clamped to the file's end.
    const huge = await get("bytes=99999-99999999999999999999");
    expect(huge.status).toBe(206);
    expect(huge.headers.get("content-range")).toBe("bytes 99999-99999/100000");
    await huge.arrayBuffer();
    const past = await get("bytes=100000-");
    expect(past.status).toBe(416);
    expect(past.headers.get("content-range")).toBe("bytes */100000");
    const several = await get("bytes=0-1,5-6");
    expect(several.status).toBe(200);
    expect((await several.arrayBuffer()).byteLength).toBe(100_000);
    const etag = mid.headers.get("etag") as string;
    const staleIfRange = await get("bytes=0-9", { "if-range": '"stale"' });
    expect(staleIfRange.status).toBe(200);
    await staleIfRange.arrayBuffer();
    expect((await get("bytes=0-9", { "if-range": etag })).status).toBe(206);
  });

  it("answers If-None-Match with 304, enforces If-Match with 412, and sends Last-Modified and Content-Disposition", async () => {
    const file = await upload(tokens.ada, 'Übersicht "2026".pdf', Buffer.from("%PDF-1.7 tiny"));
    const first = await fetch(`${base}${file.url}`, { headers: auth(tokens.ada) });
    expect(first.status).toBe(200);
    const etag = first.headers.get("etag") as string;
    expect(etag).toMatch(/^"[0-9a-f]+(-[0-9]+)?"$/);
    expect(first.headers.get("accept-ranges")).toBe("bytes");
    expect(Date.parse(first.headers.get("last-modified") as string)).toBeGreaterThan(0);
    expect(first.headers.get("content-disposition")).toBe(
      "inline; filename=\"_bersicht _2026_.pdf\"; filename*=UTF-8''%C3%9Cbersicht%20%222026%22.pdf",
    );
    await first.arrayBuffer();
    const cached = await fetch(`${base}${file.url}`, { headers: { ...auth(tokens.ada), "if-none-match": etag } });
    expect(cached.status).toBe(304);
    expect(cached.headers.get("etag")).toBe(etag);
    expect(
      (await fetch(`${base}${file.url}`, { headers: { ...auth(tokens.ada), "if-none-match": `"other", W/${etag}` } }))
        .status,
    ).toBe(304);
    expect(
      (await fetch(`${base}${file.url}`, { headers: { ...auth(tokens.ada), "if-match": '"other"' } })).status,
    ).toBe(412);
    const matching = await fetch(`${base}${file.url}`, { headers: { ...auth(tokens.ada), "if-match": etag } });
    expect(matching.status).toBe(200);
    expect(await matching.text()).toBe("%PDF-1.7 tiny");
    const attachment = await fetch(`${base}${file.url}?download`, { headers: auth(tokens.ada) });
    expect(attachment.headers.get("content-disposition")).toMatch(/^attachment; /);
    await attachment.arrayBuffer();
  });

  it("answers HEAD with the headers of a GET and no body; strangers get 403", async () => {
    const file = await upload(tokens.ada, "h.txt", Buffer.from("hello head"));
    const head = await fetch(`${base}${file.url}`, { method: "HEAD", headers: auth(tokens.ada) });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe("10");
    expect(head.headers.get("etag")).toBeTruthy();
    expect(await head.text()).toBe("");
    expect((await fetch(`${base}${file.url}`, { method: "HEAD", headers: auth(tokens.bob) })).status).toBe(403);
  });

  it("lists the caller's completed files by prefix, a page at a time, and only theirs", async () => {
    for (let i = 0; i < 5; i++) await upload(tokens.bob, `f${i}.txt`, Buffer.from(`file ${i}`));
    await upload(tokens.bob, "pub.txt", Buffer.from("public"), { public: true });
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const res = await fetch(`${base}/v1/files?prefix=priv/&limit=2${cursor ? `&cursor=${cursor}` : ""}`, {
        headers: auth(tokens.bob),
      });
      const page = (await res.json()) as { files: { key: string; originalFilename: string }[]; cursor?: string };
      expect(page.files.length).toBeLessThanOrEqual(2);
      seen.push(...page.files.map((f) => f.key));
      cursor = page.cursor;
    } while (cursor !== undefined);
    expect(seen).toHaveLength(5);
    expect([...seen].sort()).toEqual(seen);
    const all = (await (await fetch(`${base}/v1/files`, { headers: auth(tokens.bob) })).json()) as {
      files: { key: string }[];
    };
    expect(all.files).toHaveLength(6);
    const others = (await (await fetch(`${base}/v1/files`, { headers: auth(tokens.globex) })).json()) as {
      files: unknown[];
    };
    expect(others.files).toEqual([]);
    expect((await fetch(`${base}/v1/files?limit=0`, { headers: auth(tokens.bob) })).status).toBe(400);
    expect((await fetch(`${base}/v1/files`)).status).toBe(401);
  });

  it("deletes a file through the delete queue (owner only); aborting a completed upload is 409", async () => {
    const file = await upload(tokens.ada, "gone.txt", Buffer.from("soon gone"));
    expect(
      (await fetch(`${base}/v1/uploads/${file.claimId}`, { method: "DELETE", headers: auth(tokens.ada) })).status,
    ).toBe(409);
    expect((await fetch(`${base}${file.url}`, { method: "DELETE", headers: auth(tokens.bob) })).status).toBe(404);
    expect((await fetch(`${base}${file.url}`, { method: "DELETE", headers: auth(tokens.ada) })).status).toBe(204);
    expect((await fetch(`${base}${file.url}`, { method: "DELETE", headers: auth(tokens.ada) })).status).toBe(404);
    expect((await fetch(`${base}${file.url}`, { headers: auth(tokens.ada) })).status).toBe(403);
    const deadline = Date.now() + 10_000;
    while ((await objects.head(file.key)) !== null && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    expect(await objects.head(file.key)).toBeNull();
  });

  it("refuses a non-JSON POST /v1/uploads with 415, a non-object with 400, and non-boolean public with 400", async () => {
    const post = (body: string, type?: string) =>
      fetch(`${base}/v1/uploads`, {
        method: "POST",
        headers: { ...auth(tokens.ada), ...(type === undefined ? {} : { "content-type": type }) },
        body,
      });
    const form = await post("filename=a.txt&size=3", "application/x-www-form-urlencoded");
    expect(form.status).toBe(415);
    expect(((await form.json()) as { error: { code: string } }).error.code).toBe("UNSUPPORTED_MEDIA_TYPE");
    expect((await post(JSON.stringify({ filename: "a.txt", size: 3 }))).status).toBe(415);
    expect((await post("[]", "application/json")).status).toBe(400);
    const yes = await post(JSON.stringify({ filename: "a.txt", size: 3, public: "yes" }), "application/json");
    expect(yes.status).toBe(400);
    expect(((await yes.json()) as { error: { message: string } }).error.message).toMatch(
      /public must be true or false/,
    );
    expect((await post(JSON.stringify({ filename: "a.txt", size: 3 }), "application/json; charset=utf-8")).status).toBe(
      201,
    );
  });

  it("lists the caller's unfinished uploads and reports one upload's state", async () => {
    const res = await fetch(`${base}/v1/uploads`, {
      method: "POST",
      headers: { ...auth(tokens.globex), "content-type": "application/json" },
      body: JSON.stringify({ filename: "pending.bin", size: 5 }),
    });
    const init = (await res.json()) as { claimId: string };
    const list = (await (await fetch(`${base}/v1/uploads`, { headers: auth(tokens.globex) })).json()) as {
      uploads: { claimId: string; originalFilename: string }[];
    };
    expect(list.uploads.map((u) => [u.claimId, u.originalFilename])).toEqual([[init.claimId, "pending.bin"]]);
    const one = (await (
      await fetch(`${base}/v1/uploads/${init.claimId}`, { headers: auth(tokens.globex) })
    ).json()) as {
      status: string;
    };
    expect(one.status).toBe("pending");
    expect((await fetch(`${base}/v1/uploads/${init.claimId}`, { headers: auth(tokens.acme) })).status).toBe(403);
  });
});
