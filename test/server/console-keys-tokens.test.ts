import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { browserSuitesRun, launchChromium } from "../support/chromium.js";
import { useTempDir } from "../support/temp-dir.js";
import { auth, startServer, tokens } from "./server-fixture.js";

const ada = encodeURIComponent("acme/users/ada");

describe("admin console: the session's own token, long keys and live counts", async () => {
  const dir = useTempDir();
  const server = await startServer(dir);
  const base = await server.listen();
  const put = async (token: string, path: string, body: string) => {
    const res = await fetch(`${base}/v1/state/${path}`, { method: "PUT", headers: auth(token), body });
    expect(res.ok).toBe(true);
  };
  const remove = async (token: string, path: string) => {
    const res = await fetch(`${base}/v1/state/${path}`, { method: "DELETE", headers: auth(token) });
    expect(res.ok).toBe(true);
  };

  describe.runIf(browserSuitesRun(true))("in Chromium", () => {
    let browser: Browser;
    const open = async (): Promise<Page> => {
      const page = await browser.newPage();
      page.setDefaultTimeout(5000);
      return page;
    };
    const signIn = async (page: Page, token: string) => {
      await page.goto(`${base}/#token=${token}`);
      await page.waitForSelector("#content");
    };
    /** Waits until the pager reads `text` while the list shows `shown` keys. */
    const waitForCount = (page: Page, text: string, shown: number) =>
      expect
        .poll(
          async () => [
            (await page.locator(".pager").innerText()).includes(text),
            await page.locator("#keys a.item").count(),
          ],
          {
            timeout: 5000,
          },
        )
        .toEqual([true, shown]);
    beforeAll(async () => {
      browser = await launchChromium();
    });
    afterAll(async () => {
      await browser?.close();
    });

    it("marks the token it signed in with as this session, also a token from a plain tokens file", async () => {
      const ownId = server.tokens?.identify(tokens.acmeAdmin)?.id;
      expect(ownId).toBeDefined();
      const made = (await (
        await fetch(`${base}/v1/tokens`, {
          method: "POST",
          headers: { ...auth(tokens.acmeAdmin), "content-type": "application/json" },
          body: JSON.stringify({ roles: ["admin"], label: "another session" }),
        })
      ).json()) as { id: string; token: string };
      expect(made.token).toMatch(/^sr_/);
      for (const [token, id] of [
        [tokens.acmeAdmin, ownId as string],
        [made.token, made.id],
      ] as const) {
        const page = await open();
        try {
          await signIn(page, token);
          await page.goto(`${base}/#/tokens`);
          await page.waitForSelector("#tokens .pill >> text=this session");
          const marked = await page
            .locator("#tokens tbody tr", { has: page.locator(".pill", { hasText: "this session" }) })
            .allInnerTexts();
          expect(marked).toHaveLength(1);
          expect(marked[0]).toContain(id);
        } finally {
          await page.close();
        }
      }
    });

    it("shows a very long key on one line, the full key in its title and above its value", async () => {
      const longKey = `order-${"0123456789abcdef".repeat(30)}-end`;
      await put(tokens.ada, `long/${encodeURIComponent(longKey)}`, "a value under a long key");
      await put(tokens.ada, "long/short", "a value under a short key");
      const page = await open();
      try {
        await signIn(page, tokens.acmeAdmin);
        await page.goto(`${base}/#/tenant/${ada}/long`);
        await page.waitForSelector('#keys a[data-key="short"]');
        const item = page.locator(`#keys a.item[data-key="${longKey}"]`);
        const shortItem = page.locator('#keys a.item[data-key="short"]');
        const [longBox, shortBox] = [await item.boundingBox(), await shortItem.boundingBox()];
        expect(longBox?.height).toBeLessThanOrEqual((shortBox?.height ?? 0) + 1);
        expect(await item.locator(".key").getAttribute("title")).toBe(longKey);
        const keysList = (await page.evaluate(
          '({ scroll: document.querySelector("#keys").scrollWidth, client: document.querySelector("#keys").clientWidth })',
        )) as { scroll: number; client: number };
        expect(keysList.scroll).toBeLessThanOrEqual(keysList.client);
        await item.click();
        await page.waitForSelector("#view >> text=a value under a long key");
        expect(await page.locator("#value-key").innerText()).toBe(longKey);
        const head = (await page.evaluate(
          '({ key: document.querySelector("#value-key").getBoundingClientRect().right, box: document.querySelector("#value").getBoundingClientRect().right })',
        )) as { key: number; box: number };
        expect(head.key).toBeLessThanOrEqual(head.box + 1);
      } finally {
        await page.close();
      }
    });

    it("keeps the shown total in step with the list as keys arrive and go live", async () => {
      await put(tokens.ada, "counted/a", "1");
      await put(tokens.ada, "counted/b", "2");
      const page = await open();
      try {
        await signIn(page, tokens.acmeAdmin);
        await page.goto(`${base}/#/tenant/${ada}/counted`);
        await waitForCount(page, "1-2 of 2", 2);
        await page.waitForSelector("#live-state >> text=live");
        await put(tokens.ada, "counted/c", "3");
        await waitForCount(page, "1-3 of 3", 3);
        await remove(tokens.ada, "counted/a");
        await waitForCount(page, "1-2 of 2", 2);
      } finally {
        await page.close();
      }
    });

    it("counts a key arriving live on a group longer than one page without overfilling the page", async () => {
      for (let i = 0; i < 100; i += 25) {
        await Promise.all(
          Array.from({ length: 25 }, (_, j) => put(tokens.ada, `paged/k-${String(i + j).padStart(3, "0")}`, "v")),
        );
      }
      const page = await open();
      try {
        await signIn(page, tokens.acmeAdmin);
        await page.goto(`${base}/#/tenant/${ada}/paged`);
        await waitForCount(page, "1-100 of 100", 100);
        await page.waitForSelector("#live-state >> text=live");
        await put(tokens.ada, "paged/k-050a", "arrived live");
        await waitForCount(page, "1-100 of 101", 100);
        await page.waitForSelector('#keys a[data-key="k-050a"]');
      } finally {
        await page.close();
      }
    });
  });
});
