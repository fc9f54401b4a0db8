import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { describe, expect, it } from "vitest";
import { useTempDir } from "../support/temp-dir.js";
import { TestPeer } from "./bus-peer.js";
import { auth, startServer, tokens } from "./server-fixture.js";

const chromiumPath = "/usr/bin/chromium";
const chromiumArgs = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

describe("inspector page", async () => {
  const dir = useTempDir();
  const server = await startServer(dir);
  const base = await server.listen();

  it("serves inspector data to admins only", async () => {
    await fetch(`${base}/v1/state/settings/theme`, { method: "PUT", headers: auth(tokens.acme), body: "dark" });
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

  // CI installs Debian's chromium (.ci/run); elsewhere the browser test needs it installed.
  it.runIf(existsSync(chromiumPath) || process.env.CI === "true")(
    "renders tenants, keys, queues and the audit chain in headless Chromium",
    async () => {
      await fetch(`${base}/v1/state/cart/item-1`, { method: "PUT", headers: auth(tokens.ada), body: "2" });
      await fetch(`${base}/v1/state/cart/item-2`, { method: "PUT", headers: auth(tokens.ada), body: "5" });
      const ws = `${base.replace("http", "ws")}/v1/bus`;
      const secret = readFileSync(join(dir, "bus-hmac.key"), "utf8").trim();
      const alice = await TestPeer.connect(ws, auth(tokens.acme), "alice", secret);
      const bob = await TestPeer.connect(ws, auth(tokens.ada), "bob", secret);
      alice.send("bob", { hi: 1 }, "insp-1");
      await bob.waitFor(1);
      alice.close();
      bob.close();
      const browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
      try {
        const page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
        await page.goto(`${base}/#token=${tokens.operator}`);
        await page.waitForSelector("#content:not([hidden])");
        const rows = await page.locator("#tenants tbody tr").allInnerTexts();
        expect(rows.join("\n")).toContain("acme/users/ada");
        expect(rows.join("\n")).toContain("cart (2): item-1, item-2");
        expect(await page.locator("#audit").innerText()).toMatch(/rows\s+[1-9]\d*\s+status\s+intact/);
        expect(await page.locator("#queues").innerText()).toContain("delete");
        // The token left the address bar (kept in sessionStorage only).
        expect(page.url()).toBe(`${base}/`);
        const shot = join(process.env.INSPECTOR_SCREENSHOT_DIR ?? dir, "inspector.png");
        await page.screenshot({ path: shot, fullPage: true });
        expect(statSync(shot).size).toBeGreaterThan(10_000);

        const anon = await browser.newPage();
        await anon.goto(`${base}/`);
        await anon.waitForSelector("#login:not([hidden])");
        expect(await anon.locator("#status").innerText()).toContain("sign in");
      } finally {
        await browser.close();
      }
    },
  );
});
