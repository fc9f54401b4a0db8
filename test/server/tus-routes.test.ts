import { createHash, randomBytes } from "node:crypto";
import { request } from "node:http";
import { Upload } from "tus-js-client";
import { afterAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { startCuttingProxy } from "../support/cutting-proxy.js";
import { useTempDir } from "../support/temp-dir.js";
import { auth, startServer, tokens } from "./server-fixture.js";

const MB = 1_000_000;
const tus = { "tus-resumable": "1.0.0" };
const b64 = (text: string) => Buffer.from(text).toString("base64");

/** Uploads `data` with the real tus-js-client; resolves with the upload URL and the requests it made. */
function tusUpload(
  endpoint: string,
  token: string,
  data: Buffer,
  filename: string,
  options: { chunkSize?: number } = {},
): Promise<{ url: string; requests: string[]; fileKey: string | undefined }> {
  const requests: string[] = [];
  let fileKey: string | undefined;
  return new Promise((resolve, reject) => {
    const upload = new Upload(data, {
      endpoint: `${endpoint}/v1/tus/`,
      headers: auth(token),
      metadata: { filename, filetype: "application/octet-stream" },
      retryDelays: [0, 50, 100, 200, 400],
      ...(options.chunkSize === undefined ? {} : { chunkSize: options.chunkSize }),
      onBeforeRequest: (req) => {
        requests.push(`${req.getMethod()} ${req.getHeader("Upload-Offset") ?? ""}`.trim());
      },
      onAfterResponse: (_req, res) => {
        fileKey = res.getHeader("Storeroom-File-Key") ?? fileKey;
      },
      onError: reject,
      onSuccess: () => resolve({ url: upload.url as string, requests, fileKey }),
    });
    upload.start();
  });
}

describe("tus 1.0 server", async () => {
  const dir = useTempDir();
  const clock = new ManualClock(Date.now());
  const server = await startServer(dir, { clock, uploads: { claimTtlMs: 3_600_000 } });
  const base = await server.listen();
  const proxy = await startCuttingProxy(base);
  afterAll(() => proxy.close());

  const download = async (key: string, token: string) => {
    const res = await fetch(`${base}/v1/files/${key}`, { headers: auth(token) });
    expect(res.status).toBe(200);
    return Buffer.from(await res.arrayBuffer());
  };

  it("tus-js-client uploads 20 MB through a connection cut half-way, resumes, and the file is byte-identical", {
    timeout: 60_000,
  }, async () => {
    const data = randomBytes(20 * MB);
    proxy.cutAfter(10 * MB);
    const result = await tusUpload(proxy.url, tokens.ada, data, "movie.bin");
    expect(proxy.cuts).toBe(1);
    // After the cut the client asked for the offset and resumed from it, past the start.
    const patches = result.requests.filter((r) => r.startsWith("PATCH"));
    expect(patches.length).toBeGreaterThanOrEqual(2);
    const resumedAt = Number(patches.at(-1)?.split(" ")[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThan(data.length);
    expect(result.requests).toContain("HEAD");
    expect(result.fileKey).toMatch(/^priv\//);
    const stored = await download(result.fileKey as string, tokens.ada);
    expect(createHash("sha256").update(stored).digest("hex")).toBe(createHash("sha256").update(data).digest("hex"));
  });

  it("runs concurrent uploads of several callers with small chunks; each file is byte-identical", {
    timeout: 60_000,
  }, async () => {
    const callers = [tokens.ada, tokens.bob, tokens.acme, tokens.globex, tokens.ada, tokens.bob];
    const files = callers.map((_, i) => randomBytes(3 * MB + i * 12_345));
    const results = await Promise.all(
      callers.map((token, i) => tusUpload(base, token, files[i] as Buffer, `f${i}.bin`, { chunkSize: 1_500_000 })),
    );
    for (const [i, result] of results.entries()) {
      expect((await download(result.fileKey as string, callers[i] as string)).equals(files[i] as Buffer)).toBe(true);
    }
  });

  it("advertises its version, extensions, limits and checksum algorithms; refuses other protocol versions", async () => {
    const options = await fetch(`${base}/v1/tus/`, { method: "OPTIONS" });
    expect(options.status).toBe(204);
    expect(options.headers.get("tus-version")).toBe("1.0.0");
    expect(options.headers.get("tus-extension")).toBe("creation,creation-with-upload,termination,expiration,checksum");
    expect(Number(options.headers.get("tus-max-size"))).toBe(1024 ** 3);
    expect(options.headers.get("tus-checksum-algorithm")).toContain("sha1");
    const old = await fetch(`${base}/v1/tus/`, {
      method: "POST",
      headers: { ...auth(tokens.ada), "tus-resumable": "0.2.2", "upload-length": "3" },
    });
    expect(old.status).toBe(412);
    expect(old.headers.get("tus-version")).toBe("1.0.0");
    expect((await fetch(`${base}/v1/tus/`, { method: "POST", headers: { ...tus, "upload-length": "3" } })).status).toBe(
      401,
    );
  });

  it("answers CORS preflights and exposes its headers on every answer, errors included", async () => {
    const preflight = await fetch(`${base}/v1/tus/some-id`, {
      method: "OPTIONS",
      headers: {
        origin: "https://app.example",
        "access-control-request-method": "PATCH",
        "access-control-request-headers": "authorization,tus-resumable,upload-offset,content-type",
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("*");
    expect(preflight.headers.get("access-control-allow-methods")).toContain("PATCH");
    const allowed = (preflight.headers.get("access-control-allow-headers") ?? "").toLowerCase();
    for (const name of ["authorization", "tus-resumable", "upload-offset", "upload-length", "upload-metadata"]) {
      expect(allowed).toContain(name);
    }
    const created = await fetch(`${base}/v1/tus/`, {
      method: "POST",
      headers: { ...auth(tokens.ada), ...tus, origin: "https://app.example", "upload-length": "5" },
    });
    expect(created.status).toBe(201);
    expect(created.headers.get("access-control-allow-origin")).toBe("*");
    const exposed = (created.headers.get("access-control-expose-headers") ?? "").toLowerCase();
    for (const name of [
      "location",
      "upload-offset",
      "upload-length",
      "upload-metadata",
      "tus-resumable",
      "storeroom-file-key",
    ]) {
      expect(exposed).toContain(name);
    }
    const unauthenticated = await fetch(`${base}/v1/tus/`, {
      method: "POST",
      headers: { ...tus, origin: "https://app.example", "upload-length": "5" },
    });
    expect(unauthenticated.status).toBe(401);
    expect(unauthenticated.headers.get("access-control-allow-origin")).toBe("*");
  });

  it("creates an empty upload complete at once (Upload-Length: 0); refuses Upload-Defer-Length, which it does not advertise", async () => {
    const created = await fetch(`${base}/v1/tus/`, {
      method: "POST",
      headers: { ...auth(tokens.ada), ...tus, "upload-length": "0", "upload-metadata": `filename ${b64("empty.txt")}` },
    });
    expect(created.status).toBe(201);
    expect(created.headers.get("upload-offset")).toBe("0");
    const key = created.headers.get("storeroom-file-key") as string;
    expect(key).toMatch(/^priv\//);
    const head = await fetch(`${base}${created.headers.get("location")}`, {
      method: "HEAD",
      headers: { ...auth(tokens.ada), ...tus },
    });
    expect(head.headers.get("upload-offset")).toBe("0");
    expect(head.headers.get("upload-length")).toBe("0");
    const patch = await fetch(`${base}${created.headers.get("location")}`, {
      method: "PATCH",
      headers: { ...auth(tokens.ada), ...tus, "content-type": "application/offset+octet-stream", "upload-offset": "0" },
      body: Buffer.from("x"),
    });
    expect(patch.status).toBe(409);
    expect((await download(key, tokens.ada)).byteLength).toBe(0);
    const deferred = await fetch(`${base}/v1/tus/`, {
      method: "POST",
      headers: { ...auth(tokens.ada), ...tus, "upload-defer-length": "1" },
    });
    expect(deferred.status).toBe(400);
    const options = await fetch(`${base}/v1/tus/`, { method: "OPTIONS" });
    expect(options.headers.get("tus-extension")).not.toContain("creation-defer-length");
  });

  it("creates with upload, reports the offset, checks offsets, types and checksums, and completes", async () => {
    const data = Buffer.from("hello, resumable world");
    const created = await fetch(`${base}/v1/tus/`, {
      method: "POST",
      headers: {
        ...auth(tokens.bob),
        ...tus,
        "upload-length": String(data.length),
        "upload-metadata": `filename ${b64("greeting.png")},filetype ${b64("image/png")}`,
        "content-type": "application/offset+octet-stream",
      },
      body: data.subarray(0, 5),
    });
    expect(created.status).toBe(201);
    expect(created.headers.get("upload-offset")).toBe("5");
    expect(Date.parse(created.headers.get("upload-expires") as string)).toBeGreaterThan(clock.now());
    const url = `${base}${created.headers.get("location")}`;
    const head = await fetch(url, { method: "HEAD", headers: { ...auth(tokens.bob), ...tus } });
    expect(head.status).toBe(200);
    expect(head.headers.get("upload-offset")).toBe("5");
    expect(head.headers.get("upload-length")).toBe(String(data.length));
    expect(head.headers.get("upload-metadata")).toBe(`filename ${b64("greeting.png")},filetype ${b64("image/png")}`);
    expect(head.headers.get("cache-control")).toBe("no-store");
    expect((await fetch(url, { method: "HEAD", headers: { ...auth(tokens.ada), ...tus } })).status).toBe(403);

    const patch = (offset: number, body: Buffer, extra: Record<string, string> = {}) =>
      fetch(url, {
        method: "PATCH",
        headers: {
          ...auth(tokens.bob),
          ...tus,
          "content-type": "application/offset+octet-stream",
          "upload-offset": String(offset),
          ...extra,
        },
        body,
      });
    expect((await patch(3, data.subarray(3, 8))).status).toBe(409);
    expect((await patch(5, data.subarray(5, 8), { "content-type": "application/json" })).status).toBe(415);
    const wrongSum = await patch(5, data.subarray(5, 8), {
      "upload-checksum": `sha1 ${createHash("sha1").update("not these bytes").digest("base64")}`,
    });
    expect(wrongSum.status).toBe(460);
    expect((await patch(5, data.subarray(5, 8), { "upload-checksum": "crc99 AAAA" })).status).toBe(400);
    const goodSum = await patch(5, data.subarray(5, 8), {
      "upload-checksum": `sha256 ${createHash("sha256").update(data.subarray(5, 8)).digest("base64")}`,
    });
    expect(goodSum.status).toBe(204);
    expect(goodSum.headers.get("upload-offset")).toBe("8");
    expect((await patch(8, Buffer.concat([data.subarray(8), Buffer.from("!")]))).status).toBe(413);
    // Overridden method for clients behind proxies that only pass POST.
    const last = await fetch(url, {
      method: "POST",
      headers: {
        ...auth(tokens.bob),
        ...tus,
        "x-http-method-override": "PATCH",
        "content-type": "application/offset+octet-stream",
        "upload-offset": "8",
      },
      body: data.subarray(8),
    });
    expect(last.status).toBe(204);
    expect(last.headers.get("upload-offset")).toBe(String(data.length));
    const key = last.headers.get("storeroom-file-key") as string;
    expect((await download(key, tokens.bob)).toString()).toBe(data.toString());
    const file = await fetch(`${base}/v1/files/${key}`, { headers: auth(tokens.bob) });
    expect(file.headers.get("content-type")).toBe("image/png");
    expect(file.headers.get("content-disposition")).toBe('inline; filename="greeting.png"');
    await file.arrayBuffer();
    // A completed upload reports its full offset and cannot be terminated (delete the file instead).
    const done = await fetch(url, { method: "HEAD", headers: { ...auth(tokens.bob), ...tus } });
    expect(done.headers.get("upload-offset")).toBe(String(data.length));
    expect((await fetch(url, { method: "DELETE", headers: { ...auth(tokens.bob), ...tus } })).status).toBe(409);
  });

  it("terminates an upload and expires one past its claim's lifetime", async () => {
    const create = () =>
      fetch(`${base}/v1/tus/`, {
        method: "POST",
        headers: { ...auth(tokens.globex), ...tus, "upload-length": "100", "upload-metadata": `name ${b64("x.bin")}` },
      });
    const first = await create();
    const url = `${base}${first.headers.get("location")}`;
    expect((await fetch(url, { method: "DELETE", headers: { ...auth(tokens.globex), ...tus } })).status).toBe(204);
    expect((await fetch(url, { method: "HEAD", headers: { ...auth(tokens.globex), ...tus } })).status).toBe(404);
    const second = await create();
    const expiring = `${base}${second.headers.get("location")}`;
    expect((await fetch(expiring, { method: "HEAD", headers: { ...auth(tokens.globex), ...tus } })).status).toBe(200);
    clock.advance(3_600_001);
    expect((await fetch(expiring, { method: "HEAD", headers: { ...auth(tokens.globex), ...tus } })).status).toBe(404);
    const patch = await fetch(expiring, {
      method: "PATCH",
      headers: {
        ...auth(tokens.globex),
        ...tus,
        "content-type": "application/offset+octet-stream",
        "upload-offset": "0",
      },
      body: Buffer.alloc(10),
    });
    expect(patch.status).toBe(404);
  });

  it("a creation with upload whose body is refused creates nothing: no Location, no unfinished upload", async () => {
    const pending = async () => {
      const res = await fetch(`${base}/v1/uploads`, { headers: auth(tokens.acme) });
      return ((await res.json()) as { uploads: unknown[] }).uploads.length;
    };
    const before = await pending();
    const create = (body: Buffer | ReadableStream, extra: Record<string, string> = {}) =>
      fetch(`${base}/v1/tus/`, {
        method: "POST",
        headers: {
          ...auth(tokens.acme),
          ...tus,
          "upload-length": "4",
          "content-type": "application/offset+octet-stream",
          ...extra,
        },
        body,
        ...(body instanceof ReadableStream ? { duplex: "half" } : {}),
      } as RequestInit);
    const declared = await create(Buffer.from("too long"));
    expect(declared.status).toBe(413);
    expect(declared.headers.get("location")).toBeNull();
    // Chunked: the length is only known once the body passed it.
    const streamed = await create(
      new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode("too long"));
          controller.close();
        },
      }),
    );
    expect(streamed.status).toBe(413);
    expect(streamed.headers.get("location")).toBeNull();
    const wrongSum = await create(Buffer.from("abcd"), {
      "upload-checksum": `sha1 ${createHash("sha1").update("other").digest("base64")}`,
    });
    expect(wrongSum.status).toBe(460);
    expect(wrongSum.headers.get("location")).toBeNull();
    expect(await pending()).toBe(before);
    // The same for an append: a chunked body passing the declared size is answered 413 (the
    // connection is not dropped) and the bytes before the limit are not kept.
    const upload = await fetch(`${base}/v1/tus/`, {
      method: "POST",
      headers: { ...auth(tokens.acme), ...tus, "upload-length": "4" },
    });
    const url = `${base}${upload.headers.get("location")}`;
    const patched = await fetch(url, {
      method: "PATCH",
      headers: {
        ...auth(tokens.acme),
        ...tus,
        "content-type": "application/offset+octet-stream",
        "upload-offset": "0",
      },
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode("too long"));
          controller.close();
        },
      }),
      duplex: "half",
    } as RequestInit);
    expect(patched.status).toBe(413);
    const head = await fetch(url, { method: "HEAD", headers: { ...auth(tokens.acme), ...tus } });
    expect(head.headers.get("upload-offset")).toBe("0");
    expect((await fetch(url, { method: "DELETE", headers: { ...auth(tokens.acme), ...tus } })).status).toBe(204);
  });

  it("answers a body that never ends past Upload-Length with 413 and closes the connection instead of reading on", {
    timeout: 30_000,
  }, async () => {
    const created = await fetch(`${base}/v1/tus/`, {
      method: "POST",
      headers: { ...auth(tokens.acme), ...tus, "upload-length": "4" },
    });
    const url = new URL(`${base}${created.headers.get("location")}`);
    const req = request(url, {
      method: "PATCH",
      headers: {
        ...auth(tokens.acme),
        ...tus,
        "content-type": "application/offset+octet-stream",
        "upload-offset": "0",
        "transfer-encoding": "chunked",
      },
    });
    req.on("error", () => undefined);
    // A client that keeps sending: the server must not read it to its (absent) end.
    const sending = setInterval(() => {
      if (!req.destroyed) req.write(Buffer.alloc(64 * 1024));
    }, 5);
    try {
      const answer = new Promise<{ status: number | undefined; connection: string | undefined }>((resolve) =>
        req.on("response", (res) => {
          res.resume();
          resolve({ status: res.statusCode, connection: res.headers.connection });
        }),
      );
      const closed = new Promise<void>((resolve) => req.on("close", () => resolve()));
      req.write("too long");
      expect(await answer).toEqual({ status: 413, connection: "close" });
      await closed;
    } finally {
      clearInterval(sending);
      req.destroy();
    }
  });

  it("refuses bad creation requests with 400 and oversize ones with 413", async () => {
    const post = (headers: Record<string, string>) =>
      fetch(`${base}/v1/tus/`, { method: "POST", headers: { ...auth(tokens.ada), ...tus, ...headers } });
    expect((await post({})).status).toBe(400);
    expect((await post({ "upload-length": "-1" })).status).toBe(400);
    expect((await post({ "upload-defer-length": "1" })).status).toBe(400);
    expect((await post({ "upload-length": "3", "upload-metadata": "filename ***" })).status).toBe(400);
    expect((await post({ "upload-length": "3", "upload-metadata": `public ${b64("yes")}` })).status).toBe(400);
    expect((await post({ "upload-length": String(2 * 1024 ** 3) })).status).toBe(413);
  });
});
