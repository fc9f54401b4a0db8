import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import Fastify from "fastify";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FileObjectStore } from "../../src/objects/file-object-store.js";
import { registerConsoleRoutes } from "../../src/server/console/console-routes.js";
import { errorReply } from "../../src/server/error-reply.js";
import { TenantKey, TenantStore } from "../../src/tenants/index.js";
import { browserSuitesRun, launchChromium } from "../support/chromium.js";
import { useTempDir } from "../support/temp-dir.js";
import { TestPeer } from "./bus-peer.js";
import { auth, startServer, tokens } from "./server-fixture.js";

/** Screenshots of every page, for people to look at (gitignored). */
const artifacts = join(import.meta.dirname, "..", "artifacts");

/** Polls `check` until it holds or 5 s pass. */
async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("admin console", async () => {
  const dir = useTempDir();
  const server = await startServer(dir);
  const base = await server.listen();
  const put = (token: string, path: string, body: string) =>
    fetch(`${base}/v1/state/${path}`, { method: "PUT", headers: auth(token), body });

  it("serves /v1/inspector to admins only", async () => {
    await put(tokens.acme, "settings/theme", "dark");
    expect((await fetch(`${base}/v1/inspector`, { headers: auth(tokens.acme) })).status).toBe(403);
    expect((await fetch(`${base}/v1/inspector`)).status).toBe(401);
    const data = (await (await fetch(`${base}/v1/inspector`, { headers: auth(tokens.operator) })).json()) as {
      tenants: { tenant: string; groups: { group: string; keys: string[] }[] }[];
      queues: Record<string, number>;
      audit: { intact: boolean };
    };
    expect(data.tenants).toContainEqual(
      expect.objectContaining({ tenant: "acme/org", groups: [{ group: "settings", count: 1, keys: ["theme"] }] }),
    );
    expect(data.queues).toEqual({ delete: 0, claims_pending: 0, outbox_pending: 0, bus_pending: 0 });
    expect(data.audit.intact).toBe(true);
  });

  it("answers 501 with its code when the console bundle was not built", async () => {
    const bare = Fastify();
    registerConsoleRoutes(bare, undefined);
    bare.setErrorHandler((err, _request, reply) => {
      const { status, body } = errorReply(err);
      return reply.code(status).send(body);
    });
    const res = await bare.inject({ method: "GET", url: "/" });
    expect(res.statusCode).toBe(501);
    expect(res.json()).toMatchObject({ error: { code: "UNSUPPORTED" } });
    await bare.close();
  });

  it("serves the page shell and bundle anonymously under a strict content security policy", async () => {
    const page = await fetch(`${base}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(page.headers.get("content-security-policy")).not.toContain("unsafe-inline");
    const html = await page.text();
    expect(html).toContain('src="/console/app.js"');
    const script = await fetch(`${base}/console/app.js`);
    expect(script.headers.get("content-type")).toContain("javascript");
    expect((await script.arrayBuffer()).byteLength).toBeGreaterThan(1000);
    const etag = script.headers.get("etag") ?? "";
    expect((await fetch(`${base}/console/app.js`, { headers: { "if-none-match": etag } })).status).toBe(304);
  });

  describe.runIf(browserSuitesRun(true))("in Chromium", () => {
    let browser: Browser;
    let page: Page;
    beforeAll(async () => {
      mkdirSync(artifacts, { recursive: true });
      await put(tokens.ada, "cart/item-1", JSON.stringify({ sku: "A-1", qty: 2 }));
      await put(tokens.ada, "cart/item-2", "plain words");
      await put(tokens.ada, "profile/name", "Ada");
      await put(tokens.globex, "plans/secret", "globex only");
      await server.tenants.checkpoint(TenantKey.user("acme", "ada"));
      browser = await launchChromium();
      page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      page.setDefaultTimeout(8000);
    });
    afterAll(async () => {
      await browser?.close();
    });
    const shot = async (name: string) => {
      const path = join(artifacts, `console-${name}.png`);
      await page.screenshot({ path, fullPage: true });
      expect(statSync(path).size).toBeGreaterThan(10_000);
    };

    it("signs in with a token kept in sessionStorage, not in the URL", async () => {
      await page.goto(`${base}/`);
      await page.fill("#token", "not-a-token");
      await page.click("#signin button[type=submit]");
      await page.waitForSelector(".error >> text=UNAUTHENTICATED");
      await shot("signin");
      await page.fill("#token", tokens.acmeAdmin);
      await page.click("#signin button[type=submit]");
      await page.waitForSelector("#tenants");
      expect(page.url()).not.toContain(tokens.acmeAdmin);
      expect(await page.evaluate('sessionStorage.getItem("storeroom-token")')).toBe(tokens.acmeAdmin);
      expect(await page.locator("#whoami").innerText()).toContain("admin");
    });

    it("takes the token from the fragment of the link serve prints and removes it from the address bar", async () => {
      const other = await browser.newPage();
      try {
        await other.goto(`${base}/#token=${tokens.acmeAdmin}`);
        await other.waitForSelector("#tenants");
        expect(other.url()).toBe(`${base}/#/tenants`);
        // No history entry keeps the token: one step back is the blank page the tab started on.
        await other.goBack();
        expect(other.url()).toBe("about:blank");
      } finally {
        await other.close();
      }
    });

    it("shows an org admin its own org only and refuses another org's tenant in place", async () => {
      const rows = (await page.locator("#tenants tbody tr").allInnerTexts()).join("\n");
      expect(rows).toContain("acme/users/ada");
      expect(rows).toContain("acme/org");
      expect(rows).not.toContain("globex");
      // The checkpointed tenant shows its stored size and when it was stored; both are resident.
      const ada = await page.locator("#tenants tr", { hasText: "acme/users/ada" }).innerText();
      expect(ada).toMatch(/\d+(\.\d)? (B|KB|MB)/);
      expect(ada).toMatch(/\d+ s ago/);
      expect(await page.locator("#tenants tr", { hasText: "acme/org" }).innerText()).toContain("resident");
      await shot("tenants");
      await page.goto(`${base}/#/tenant/${encodeURIComponent("globex/org")}/plans`);
      await page.waitForSelector(".error >> text=ACCESS_DENIED");
      expect(await page.content()).not.toContain("globex only");
      // The API itself refuses the same thing to the same token.
      const direct = await fetch(`${base}/v1/state/plans/secret?tenant=globex/org`, {
        headers: auth(tokens.acmeAdmin),
      });
      expect(direct.status).toBe(403);
    });

    it("browses to a value, edits it, and a plain HTTP client sees the edit", async () => {
      await page.goto(`${base}/#/tenants`);
      await page.click("#tenants >> text=acme/users/ada");
      await page.click("#groups >> text=cart");
      await page.click('#keys a[data-key="item-1"]');
      await page.waitForSelector("#view");
      // JSON is pretty-printed.
      expect(await page.locator("#view").innerText()).toContain('"sku": "A-1"');
      await shot("value");
      await page.click('button[data-mode="edit"]');
      await page.fill("#editor", '{"sku":"A-1","qty":7}');
      await page.click('[data-testid="save"]');
      await page.waitForSelector("text=saved");
      const seen = await fetch(`${base}/v1/state/cart/item-1`, { headers: auth(tokens.ada) });
      expect(await seen.text()).toBe('{"sku":"A-1","qty":7}');
    });

    it("sets a TTL on a value and deletes a value", async () => {
      await page.click('#keys a[data-key="item-2"]');
      await page.click('button[data-mode="edit"]');
      await page.fill("#ttl", "3600");
      await page.click('[data-testid="save"]');
      await page.waitForSelector("text=expires in 3600 s");
      const withTtl = await fetch(`${base}/v1/state/cart/item-2`, { headers: auth(tokens.ada) });
      const expiresAt = Number(withTtl.headers.get("x-expires-at"));
      expect(expiresAt - Date.now()).toBeGreaterThan(3_500_000);
      expect(expiresAt - Date.now()).toBeLessThanOrEqual(3_600_000);
      await page.waitForSelector('#keys a[data-key="item-2"] >> text=ttl');
      await page.click('[data-testid="delete"]');
      await page.click('[data-testid="delete"]');
      await page.waitForSelector('#keys a[data-key="item-2"]', { state: "detached" });
      expect((await fetch(`${base}/v1/state/cart/item-2`, { headers: auth(tokens.ada) })).status).toBe(404);
    });

    it("watches live changes arrive over Server-Sent Events", async () => {
      await page.click('#keys a[data-key="item-1"]');
      await page.waitForSelector("#live-state >> text=live");
      await until(
        async () =>
          (await fetch(`${base}/metrics`, { headers: auth(tokens.acme) }).then((r) => r.text())).includes(
            "storeroom_sse_streams 1",
          ),
        "the stream",
      );
      await put(tokens.ada, "cart/item-9", "arrived live");
      await page.waitForSelector("#events >> text=item-9");
      await page.waitForSelector('#keys a[data-key="item-9"]');
      // A change to the open value replaces what is shown.
      await put(tokens.ada, "cart/item-1", '{"sku":"A-1","qty":8}');
      await page.waitForSelector('#view >> text="qty": 8');
      await shot("live");
      // Keys are searched by prefix on the server.
      await page.fill("#prefix", "item-9");
      await page.waitForSelector('#keys a[data-key="item-1"]', { state: "detached" });
      expect(await page.locator("#keys a.item").count()).toBe(1);
      await page.fill("#prefix", "");
      await page.waitForSelector('#keys a[data-key="item-1"]');
    });

    it("refuses to save over a change made meanwhile and says so in place", async () => {
      await page.click('#keys a[data-key="item-1"]');
      await page.click('button[data-mode="edit"]');
      await page.fill("#editor", '{"sku":"A-1","qty":100}');
      await put(tokens.ada, "cart/item-1", '{"sku":"A-1","qty":9}');
      await page.waitForSelector("text=changed on the server while you were editing");
      await page.click('[data-testid="save"]');
      await page.waitForSelector("#value .error >> text=VERSION_CONFLICT");
      expect(await (await fetch(`${base}/v1/state/cart/item-1`, { headers: auth(tokens.ada) })).text()).toBe(
        '{"sku":"A-1","qty":9}',
      );
    });

    it("uploads a 5 MB file (resuming after a failed part) and downloads it byte-identical", async () => {
      const bytes = randomBytes(5 * 1024 * 1024);
      await page.goto(`${base}/#/files`);
      await page.waitForSelector("#upload");
      const partPuts: string[] = [];
      page.on("request", (r) => {
        if (r.method() === "PUT" && r.url().includes("/parts/")) partPuts.push(r.url().replace(/.*\/parts\//, ""));
      });
      // The second part fails once, as a dropped connection would.
      let failed = false;
      await page.route("**/v1/uploads/*/parts/2", async (route) => {
        if (failed) return route.continue();
        failed = true;
        return route.fulfill({
          status: 503,
          contentType: "application/json",
          body: JSON.stringify({ error: { code: "CLOSED", message: "connection lost" } }),
        });
      });
      await page.setInputFiles("#upload-file", {
        name: "big.bin",
        mimeType: "application/octet-stream",
        buffer: bytes,
      });
      await page.click("#upload-button");
      await page.waitForSelector("#upload-status >> text=CLOSED");
      expect(await page.locator("#upload-button").innerText()).toBe("Resume upload");
      await page.waitForSelector("#pending >> text=big.bin");
      await page.click("#upload-button");
      await page.waitForSelector("#upload-status >> text=resumed after 1 part(s)");
      // Part 1 went up once; part 2 twice (the failed try, then the resume).
      expect(partPuts.sort()).toEqual(["1", "2", "2"]);
      await page.waitForSelector("#files >> text=big.bin");
      await shot("files");
      const [download] = await Promise.all([
        page.waitForEvent("download"),
        page.click('[data-testid="download-big.bin"]'),
      ]);
      expect(download.suggestedFilename()).toBe("big.bin");
      const saved = readFileSync(await download.path());
      expect(saved.length).toBe(bytes.length);
      expect(saved.equals(bytes)).toBe(true);
    });

    it("creates a token, shows it once, revokes it, and the next request with it fails", async () => {
      await page.goto(`${base}/#/tokens`);
      await page.fill("#token-user", "carol");
      await page.fill("#token-label", "carol's laptop");
      await page.click('[data-testid="create-token"]');
      const token = await page.locator("#new-token").innerText();
      expect(token).toMatch(/^sr_[0-9a-f]+_/);
      const whoami = await fetch(`${base}/v1/whoami`, { headers: auth(token) });
      expect(((await whoami.json()) as { identity: { userId: string } }).identity.userId).toBe("carol");
      const id = /^sr_([0-9a-f]+)_/.exec(token)?.[1] ?? "";
      await page.waitForSelector(`#tokens >> text=carol's laptop`);
      await shot("tokens");
      await page.click(`[data-testid="revoke-${id}"]`);
      await page.click(`[data-testid="revoke-${id}"]`);
      await page.waitForSelector(`text=token ${id} revoked`);
      expect((await fetch(`${base}/v1/whoami`, { headers: auth(token) })).status).toBe(401);
      // Reloading shows the token gone, and the token was never shown again.
      await page.reload();
      await page.waitForSelector("#tokens");
      expect(await page.locator("#tokens").innerText()).not.toContain("carol's laptop");
      expect(await page.content()).not.toContain(token);
    });

    it("shows bus peers, a live tail of messages with bodies on demand, and verifies the audit chain", async () => {
      const ws = `${base.replace("http", "ws")}/v1/bus`;
      const secret = readFileSync(join(dir, "bus-hmac.key"), "utf8").trim();
      const alice = await TestPeer.connect(ws, auth(tokens.acme), "alice", secret);
      const bob = await TestPeer.connect(ws, auth(tokens.ada), "bob", secret);
      try {
        await page.goto(`${base}/#/bus`);
        await page.waitForSelector("#peers >> text=alice");
        expect(await page.locator("#peers").innerText()).toMatch(/bob\s+connected/);
        alice.send("bob", { hello: "from alice" }, "console-msg-1");
        await bob.waitFor(1);
        await page.waitForSelector("#tail >> text=console-msg-1");
        await page.click("#tail button >> text=Body");
        await page.waitForSelector("#tail >> text=from alice");
        await page.click('[data-testid="verify-audit"]');
        await page.waitForSelector("#audit >> text=intact");
        await shot("bus");
      } finally {
        alice.close();
        bob.close();
      }
      // Once the peers are gone the page (reloaded rather than waiting for its refresh) says so.
      await until(async () => {
        await page.reload();
        return (await page.locator("#peers").innerText()).includes("offline");
      }, "the peers to show offline");
    });

    it("draws the health charts from the in-process history", async () => {
      for (let i = 0; i < 3; i++) {
        await fetch(`${base}/v1/state/cart/item-1`, { headers: auth(tokens.ada) });
        await server.history.sample();
      }
      await page.goto(`${base}/#/health`);
      await page.waitForSelector("#chart-requests svg path");
      expect(await page.locator("#chart-resident").innerText()).not.toContain("no samples");
      // The tenant store reports its replication lag, so that chart is drawn too.
      await page.waitForSelector("#chart-lag svg");
      expect(await page.locator("#chart-lag").innerText()).toMatch(/\d+ ms/);
      await shot("health");
    });

    it("shows a tenant's conflict records", async () => {
      const bob = TenantKey.user("acme", "bob");
      await put(tokens.bob, "notes/n", "first");
      await server.tenants.checkpoint(bob);
      // Another writer publishes the same tenant behind this server's back ...
      const other = await TenantStore.open({
        objectStore: new FileObjectStore({ root: join(dir, "objects") }),
        cacheRoot: join(dir, "other-writer"),
      });
      await other.withTenant(bob, (db) => db.run("CREATE TABLE elsewhere (x TEXT)"));
      await other.checkpoint(bob);
      await other.close();
      // ... so the server's next publication is fenced and its unpublished write kept as a record.
      await put(tokens.bob, "notes/n", "second");
      await server.tenants.checkpoint(bob).catch(() => undefined);
      await page.goto(`${base}/#/tenants`);
      await page.waitForSelector("#conflicts >> text=fenced");
      expect(await page.locator("#tenants tr", { hasText: "acme/users/bob" }).innerText()).toContain("1 conflict(s)");
      await shot("tenants-conflict");
    });

    it("lets an operator switch orgs", async () => {
      await page.click("#signout");
      await page.fill("#token", tokens.operator);
      await page.click("#signin button[type=submit]");
      await page.waitForSelector("#org");
      expect(
        await page.locator("#org-list option").evaluateAll((o) => o.map((e) => e.getAttribute("value"))),
      ).toContain("globex");
      await page.fill("#org", "globex");
      await page.press("#org", "Enter");
      await page.waitForSelector("#tenants >> text=globex/org");
      expect(await page.locator("#tenants").innerText()).not.toContain("acme/");
      await page.click("#every-org");
      await page.waitForSelector("#tenants >> text=acme/users/ada");
      expect(await page.locator("#tenants").innerText()).toContain("globex/org");
      await shot("tenants-every-org");
      await page.goto(`${base}/#/health`);
      await page.waitForSelector("#chart-queues");
    });

    it("gives a token without a role its own data only", async () => {
      await page.click("#signout");
      await page.fill("#token", tokens.ada);
      await page.click("#signin button[type=submit]");
      await page.waitForSelector("#groups >> text=cart");
      expect(await page.locator("nav").innerText()).not.toContain("Tokens");
      await page.goto(`${base}/#/tokens`);
      await page.waitForSelector("#groups");
    });
  });
});
