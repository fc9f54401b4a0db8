import { buffer } from "node:stream/consumers";
import { describe, expect, it } from "vitest";
import { AccessDeniedError, InvalidKeyError } from "../../src/errors.js";
import { MemoryObjectStore } from "../../src/objects/memory-object-store.js";
import { sanitizeContentType } from "../../src/uploads/content-type.js";
import { openDownload } from "../../src/uploads/download.js";
import { parseDownloadKey } from "../../src/uploads/download-key.js";
import { buildUploadKey, uploadExtension } from "../../src/uploads/upload-key.js";
import { identityUrlKeyMapper, proxyUrlKeyMapper } from "../../src/uploads/url-key-mapper.js";

describe("download keys", () => {
  it("decodes once and rejects empty, absolute, .., backslash, NUL, redundant and trailing slashes", () => {
    expect(parseDownloadKey("pub/a%20b.png")).toBe("pub/a b.png");
    expect(parseDownloadKey("pub/a%2525.png")).toBe("pub/a%25.png");
    for (const bad of [
      "",
      "/pub/a",
      "pub/../priv/a",
      "pub/a..b",
      "pub\\a",
      "pub/a%00",
      "pub//a",
      "pub/a/",
      "%E0%A4%A",
    ]) {
      expect(() => parseDownloadKey(bad), bad).toThrow(InvalidKeyError);
    }
  });
});

describe("openDownload", () => {
  const objects = new MemoryObjectStore();

  it("serves pub/ anonymously with immutable caching, an ETag, nosniff and a sanitised type", async () => {
    await objects.put("pub/x.svg", "<svg onload=alert(1)>", { contentType: "image/svg+xml" });
    const dl = await openDownload("pub/x.svg", { objects });
    expect(dl?.headers).toMatchObject({
      "X-Content-Type-Options": "nosniff",
      "Content-Type": "application/octet-stream",
      "Cache-Control": "public, max-age=3600, immutable",
      "Content-Length": "21",
    });
    expect(dl?.headers.ETag).toMatch(/^".+"$/);
    expect((await buffer(dl!.object.body)).toString()).toBe("<svg onload=alert(1)>");
  });

  it("denies other keys by default before reading storage, and serves them privately when the ACL allows", async () => {
    await objects.put("priv/a.pdf", "pdf", { contentType: "application/pdf" });
    await expect(openDownload("priv/a.pdf", { objects })).rejects.toBeInstanceOf(AccessDeniedError);
    await expect(openDownload("priv/missing.pdf", { objects })).rejects.toBeInstanceOf(AccessDeniedError);
    const acl = { canRead: async (user: string | undefined) => user === "alice" };
    const dl = await openDownload("priv/a.pdf", { objects, principal: "alice", acl });
    expect(dl?.headers).toMatchObject({ "Cache-Control": "private, no-store", "Content-Type": "application/pdf" });
    // Private files carry an ETag too (revalidation and resumed ranges), but are never stored by caches.
    expect(dl?.headers.ETag).toMatch(/^".+"$/);
    await dl?.object.body.resume();
    expect(await openDownload("pub/missing.png", { objects })).toBeNull();
  });
});

describe("content types and keys", () => {
  it("keeps allowed types, detects from the extension otherwise, never serves scriptable types", () => {
    expect(sanitizeContentType("image/PNG; charset=x")).toBe("image/png");
    expect(sanitizeContentType("application/pdf")).toBe("application/pdf");
    expect(sanitizeContentType("text/html", "a.html")).toBe("application/octet-stream");
    expect(sanitizeContentType("text/html", "a.webp")).toBe("image/webp");
    expect(sanitizeContentType("image/svg+xml", "a.svg")).toBe("application/octet-stream");
    expect(sanitizeContentType(undefined, "noext")).toBe("application/octet-stream");
  });

  it("lays keys out as pub|priv/YYYY/MM/DD/<uuid><ext>", () => {
    const at = Date.parse("2026-01-02T23:59:59Z");
    expect(buildUploadKey(true, at, "a.tar.gz")).toMatch(/^pub\/2026\/01\/02\/[0-9a-f-]{36}\.gz$/);
    expect(buildUploadKey(false, at, "weird.p n g")).toMatch(/^priv\/2026\/01\/02\/[0-9a-f-]{36}\.bin$/);
    expect(uploadExtension(".bashrc")).toBe(".bin");
    expect(uploadExtension("a.")).toBe(".bin");
  });

  it("maps proxy URLs to keys and back, ignoring foreign or unsafe URLs", () => {
    const m = proxyUrlKeyMapper();
    expect(m.urlToKey("https://h/storage/files/pub/a%20b.png?x=1")).toBe("pub/a b.png");
    expect(m.urlToKey("/storage/files/pub/../priv/x")).toBeUndefined();
    expect(m.urlToKey("https://h/other/pub/a.png")).toBeUndefined();
    expect(m.keyToUrl("pub/a b.png")).toBe("/storage/files/pub/a%20b.png");
    expect(m.urlToKey(m.keyToUrl("pub/ä #.png"))).toBe("pub/ä #.png");
    expect(identityUrlKeyMapper.urlToKey("pub/a.png")).toBe("pub/a.png");
    expect(identityUrlKeyMapper.urlToKey("https://x/y")).toBeUndefined();
  });
});
