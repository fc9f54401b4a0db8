import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { browserSuitesRun, launchChromium } from "../support/chromium.js";
import { useTempDir } from "../support/temp-dir.js";
import { auth, startServer, tokens } from "./server-fixture.js";

const tusBundle = readFileSync(createRequire(import.meta.url).resolve("tus-js-client/dist/tus.min.js"), "utf8");

describe.runIf(browserSuitesRun())("tus from a browser page on another origin", async () => {
  const dir = useTempDir();
  const server = await startServer(dir);
  const base = await server.listen();
  // The page's origin: another port, so every request to the server is cross-origin (and preflighted).
  const page = createHttpServer((req, res) => {
    if (req.url === "/tus.min.js") res.writeHead(200, { "content-type": "text/javascript" }).end(tusBundle);
    else res.writeHead(200, { "content-type": "text/html" }).end('<!doctype html><script src="/tus.min.js"></script>');
  });
  await new Promise<void>((r) => page.listen(0, "127.0.0.1", r));
  const origin = `http://127.0.0.1:${(page.address() as AddressInfo).port}`;
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => page.close(r));
  });

  it("tus-js-client in Chromium uploads a file and an empty one; it reads the exposed headers", {
    timeout: 60_000,
  }, async () => {
    const tab = await browser.newPage();
    await tab.goto(`${origin}/`);
    const results = await tab.evaluate(
      async ({ endpoint, token }) => {
        const bytes = new Uint8Array(3 * 1024 * 1024 + 7);
        for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + 7) % 251;
        const upload = (data: Uint8Array) =>
          new Promise<{ url: string; key: string | null; offset: string | null }>((resolve, reject) => {
            let key: string | null = null;
            let offset: string | null = null;
            const tus = (
              globalThis as unknown as { tus: { Upload: new (...args: unknown[]) => { start(): void; url: string } } }
            ).tus;
            const u = new tus.Upload(new Blob([data]), {
              endpoint,
              headers: { Authorization: `Bearer ${token}` },
              chunkSize: 1024 * 1024,
              metadata: { filename: "browser.bin", filetype: "application/octet-stream" },
              onAfterResponse: (_req: unknown, res: { getHeader(name: string): string | undefined }) => {
                key = res.getHeader("Storeroom-File-Key") ?? key;
                offset = res.getHeader("Upload-Offset") ?? offset;
              },
              onError: reject,
              onSuccess: () => resolve({ url: u.url, key, offset }),
            });
            u.start();
          });
        return [await upload(bytes), await upload(new Uint8Array(0))];
      },
      { endpoint: `${base}/v1/tus/`, token: tokens.ada },
    );
    await tab.close();
    const expected = Buffer.alloc(3 * 1024 * 1024 + 7);
    for (let i = 0; i < expected.length; i++) expected[i] = (i * 31 + 7) % 251;
    const [file, empty] = results as [
      { url: string; key: string; offset: string },
      { url: string; key: string; offset: string },
    ];
    // Location, Upload-Offset and Storeroom-File-Key were readable cross-origin.
    expect(file.url.startsWith(`${base}/v1/tus/`)).toBe(true);
    expect(file.offset).toBe(String(expected.length));
    expect(empty.offset).toBe("0");
    const got = Buffer.from(
      await (await fetch(`${base}/v1/files/${file.key}`, { headers: auth(tokens.ada) })).arrayBuffer(),
    );
    expect(createHash("sha256").update(got).digest("hex")).toBe(createHash("sha256").update(expected).digest("hex"));
    const gotEmpty = await fetch(`${base}/v1/files/${empty.key}`, { headers: auth(tokens.ada) });
    expect(gotEmpty.status).toBe(200);
    expect((await gotEmpty.arrayBuffer()).byteLength).toBe(0);
  });
});
