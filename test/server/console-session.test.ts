import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TenantKey } from "../../src/tenants/index.js";
import { browserSuitesRun, launchChromium } from "../support/chromium.js";
import { useTempDir } from "../support/temp-dir.js";
import { auth, startServer, tokens } from "./server-fixture.js";

describe("admin console: sessions, odd names, paging and the page log", async () => {
  const dir = useTempDir();
  const server = await startServer(dir);
  const base = await server.listen();
  const put = (token: string, path: string, body: string) =>
    fetch(`${base}/v1/state/${path}`, { method: "PUT", headers: auth(token), body });

  it("answers the browser's icon request anonymously, so the page log holds no 401", async () => {
    const res = await fetch(`${base}/favicon.ico`);
    expect(res.status).toBe(204);
  });

  describe.runIf(browserSuitesRun(true))("in Chromium", () => {
    let browser: Browser;
    /** Errors each page logged (console errors and warnings, CSP violations, uncaught exceptions). */
    const logs = new WeakMap<Page, string[]>();
    const open = async (): Promise<Page> => {
      const page = await browser.newPage();
      const log: string[] = [];
      logs.set(page, log);
      page.setDefaultTimeout(5000);
      page.on("console", (m) => {
        if (m.type() === "error" || m.type() === "warning") log.push(`${m.type()}: ${m.text()}`);
      });
      page.on("pageerror", (e) => log.push(`uncaught: ${e.message}`));
      return page;
    };
    beforeAll(async () => {
      browser = await launchChromium();
    });
    afterAll(async () => {
      await browser?.close();
    });

    it("lists a group named events (not its event stream) and opens its values", async () => {
      await put(tokens.ada, "events/first", "a group named events");
      await put(tokens.ada, "events/events", "a key named events too");
      const page = await open();
      try {
        await page.goto(`${base}/#token=${tokens.acmeAdmin}`);
        await page.waitForSelector("#tenants");
        await page.goto(`${base}/#/tenant/${encodeURIComponent("acme/users/ada")}/events`);
        await page.waitForSelector('#keys a[data-key="first"]');
        expect(await page.locator(".pager").innerText()).toContain("1-2 of 2");
        await page.click('#keys a[data-key="events"]');
        await page.waitForSelector("#view >> text=a key named events too");
        await page.waitForSelector("#live-state >> text=live");
        await put(tokens.ada, "events/second", "arrived live");
        await page.waitForSelector('#keys a[data-key="second"]');
      } finally {
        await page.close();
      }
    });

    it("goes back to the sign-in form and forgets the token once it is revoked mid-session", async () => {
      const created = (await (
        await fetch(`${base}/v1/tokens`, {
          method: "POST",
          headers: { ...auth(tokens.acmeAdmin), "content-type": "application/json" },
          body: JSON.stringify({ roles: ["admin"], label: "short-lived" }),
        })
      ).json()) as { id: string; token: string };
      const page = await open();
      try {
        await page.goto(`${base}/#token=${created.token}`);
        await page.waitForSelector("#tenants");
        // The bus page refreshes on its own: its next refresh meets the revoked token.
        await page.goto(`${base}/#/bus`);
        await page.waitForSelector("#tail");
        const revoked = await fetch(`${base}/v1/tokens/${created.id}`, {
          method: "DELETE",
          headers: auth(tokens.acmeAdmin),
        });
        expect(revoked.ok).toBe(true);
        await page.waitForSelector("#signin .error >> text=UNAUTHENTICATED");
        expect(await page.evaluate('sessionStorage.getItem("storeroom-token")')).toBeNull();
        // The refreshes stopped with the page: nothing replaces the sign-in form.
        await page.goto(`${base}/#/tokens`);
        await page.waitForSelector("#signin");
        expect(await page.locator("#content").count()).toBe(0);
      } finally {
        await page.close();
      }
    });

    it("shows a tenant id that is not valid percent-encoding in place, without an uncaught error", async () => {
      const page = await open();
      try {
        await page.goto(`${base}/#token=${tokens.acmeAdmin}`);
        await page.waitForSelector("#tenants");
        await page.goto(`${base}/#/tenant/%E0%A4%A`);
        await page.waitForSelector("#content .error");
        expect(logs.get(page)?.filter((l) => l.startsWith("uncaught"))).toEqual([]);
      } finally {
        await page.close();
      }
    });

    it("pages the org's files with the listing's cursor and reaches the last one", async () => {
      const upload = async (i: number) => {
        const name = `f-${String(i).padStart(3, "0")}.txt`;
        const created = await fetch(`${base}/v1/uploads`, {
          method: "POST",
          headers: { ...auth(tokens.bob), "content-type": "application/json" },
          body: JSON.stringify({ filename: name, size: 1 }),
        });
        const { claimId } = (await created.json()) as { claimId: string };
        await fetch(`${base}/v1/uploads/${claimId}/parts/1`, { method: "PUT", headers: auth(tokens.bob), body: "x" });
        const done = await fetch(`${base}/v1/uploads/${claimId}/complete`, {
          method: "POST",
          headers: auth(tokens.bob),
        });
        expect(done.ok).toBe(true);
      };
      for (let i = 0; i < 101; i += 20)
        await Promise.all(Array.from({ length: Math.min(20, 101 - i) }, (_, j) => upload(i + j)));
      const page = await open();
      try {
        await page.goto(`${base}/#token=${tokens.acmeAdmin}`);
        await page.waitForSelector("#tenants");
        await page.goto(`${base}/#/files`);
        await page.waitForSelector("#files-pager >> text=page 1");
        expect(await page.locator("#files tbody tr").count()).toBe(100);
        const firstPage = await page.locator("#files").innerText();
        await page.click("#files-pager button >> text=Next");
        await page.waitForSelector("#files-pager >> text=page 2");
        expect(await page.locator("#files tbody tr").count()).toBe(1);
        const last = await page.locator("#files tbody").innerText();
        expect(last).toMatch(/f-\d{3}\.txt/);
        expect(firstPage).not.toContain(last.split("\t")[0]);
        expect(await page.locator("#files-pager button >> text=Next").count()).toBe(0);
        await page.click("#files-pager button >> text=Previous");
        await page.waitForSelector("#files-pager >> text=page 1");
        expect(await page.locator("#files tbody tr").count()).toBe(100);
      } finally {
        await page.close();
      }
    });

    it("shows residency and lag for every tenant, also past the inspector's first 50", async () => {
      const users = Array.from({ length: 52 }, (_, i) => `many-${String(i).padStart(2, "0")}`);
      for (const user of users) {
        const res = await fetch(`${base}/v1/state/g/k?tenant=acme/users/${user}`, {
          method: "PUT",
          headers: auth(tokens.acmeAdmin),
          body: "v",
        });
        expect(res.status).toBe(204);
      }
      for (const user of users) await server.tenants.checkpoint(TenantKey.user("acme", user));
      const listed = (await (await fetch(`${base}/v1/tenants`, { headers: auth(tokens.acmeAdmin) })).json()) as {
        tenants: { tenant: string; resident: boolean; lagMs?: number }[];
      };
      const many = listed.tenants.filter((t) => t.tenant.startsWith("acme/users/many-"));
      expect(many).toHaveLength(52);
      expect(many.every((t) => t.resident && t.lagMs === 0)).toBe(true);
      const page = await open();
      try {
        await page.goto(`${base}/#token=${tokens.acmeAdmin}`);
        await page.waitForSelector("#tenants");
        const rows = page.locator("#tenants tbody tr", { hasText: "acme/users/many-" });
        expect(await rows.count()).toBe(52);
        for (const text of await rows.allInnerTexts()) {
          expect(text).toContain("resident");
          expect(text).toContain("up to date");
        }
        const residentStat = Number(await page.locator(".stat", { hasText: "resident" }).locator(".value").innerText());
        expect(residentStat).toBe(listed.tenants.filter((t) => t.resident).length);
      } finally {
        await page.close();
      }
    });

    it("shows an idle tenant as idle: looking at the tenants page does not load it", async () => {
      const idle = TenantKey.user("acme", "idle-one");
      await fetch(`${base}/v1/state/g/k?tenant=acme/users/idle-one`, {
        method: "PUT",
        headers: auth(tokens.acmeAdmin),
        body: "v",
      });
      await server.tenants.checkpoint(idle);
      await server.tenants.evict(idle);
      const page = await open();
      try {
        await page.goto(`${base}/#token=${tokens.acmeAdmin}`);
        await page.waitForSelector("#tenants >> text=acme/users/idle-one");
        await page.reload();
        await page.waitForSelector("#tenants >> text=acme/users/idle-one");
        const residentCell = page.locator("#tenants tr", { hasText: "acme/users/idle-one" }).locator("td").nth(3);
        expect(await residentCell.innerText()).toBe("idle");
        expect((await server.tenants.inspect(idle)).resident).toBe(false);
      } finally {
        await page.close();
      }
    });

    it("renders keys and values holding markup as text, and logs no errors or CSP violations", async () => {
      const group = "<script>window.injected=1</script>";
      const key = "<img src=x onerror=window.injected=2>";
      await put(tokens.ada, `${encodeURIComponent(group)}/${encodeURIComponent(key)}`, "<b onmouseover=x>bold</b>");
      const page = await open();
      try {
        await page.goto(`${base}/#token=${tokens.acmeAdmin}`);
        await page.waitForSelector("#tenants");
        await page.goto(`${base}/#/tenant/${encodeURIComponent("acme/users/ada")}`);
        await page.waitForSelector(`#groups >> text=${group}`);
        await page.goto(
          `${base}/#/tenant/${encodeURIComponent("acme/users/ada")}/${encodeURIComponent(group)}/${encodeURIComponent(key)}`,
        );
        await page.waitForSelector("#view >> text=<b onmouseover=x>bold</b>");
        expect(await page.locator(`#keys a.item .key`).innerText()).toBe(key);
        expect(await page.evaluate("window.injected")).toBeUndefined();
        expect(await page.locator("#app img, #app script, #app b").count()).toBe(0);
        await page.goto(`${base}/#/tenants`);
        await page.waitForSelector("#tenants");
        expect(logs.get(page)).toEqual([]);
      } finally {
        await page.close();
      }
    });
  });
});
