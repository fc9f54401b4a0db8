import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { ManualClock } from "../../src/clock.js";
import { InvalidArgumentError, NotFoundError, UnauthenticatedError } from "../../src/errors.js";
import { TokenAuthenticator, TokenStore } from "../../src/server/index.js";
import { useTempDir } from "../support/temp-dir.js";

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

function write(path: string, text: string): string {
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, text);
  return path;
}

describe("TokenStore", () => {
  const dir = useTempDir();
  let n = 0;
  const fresh = () => join(dir, `t${n++}`, "tokens.json");

  it("bootstraps one operator token, stores only its digest (0600) and reports it until acknowledged", async () => {
    const path = fresh();
    const first = await TokenStore.open({ path, bootstrap: true });
    const generated = first.generated;
    expect(generated).toMatchObject({ fromEarlierStart: false, record: { orgId: "default", roles: ["operator"] } });
    const token = generated?.token as string;
    const text = readFileSync(path, "utf8");
    expect(text).not.toContain(token);
    expect(JSON.parse(text)).toMatchObject({
      version: 2,
      tokens: [{ id: generated?.record.id, sha256: expect.any(String) }],
    });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    // A start that never showed it (it failed before printing) hands the same token to the next start.
    const again = await TokenStore.open({ path, bootstrap: true });
    expect(again.generated).toEqual({ ...generated, fromEarlierStart: true });
    await again.acknowledgeGenerated();
    expect((await TokenStore.open({ path, bootstrap: true })).generated).toBeUndefined();
    const auth = new TokenAuthenticator(again);
    expect(auth.identify(bearer(token))).toEqual({ orgId: "default", roles: ["operator"] });
    expect(() => auth.identify(bearer(`${token}x`))).toThrow(UnauthenticatedError);
    expect(() => auth.identify({ authorization: token })).toThrow(UnauthenticatedError);
    expect(auth.identify({})).toBeNull();
  });

  it("hashes a clear-text tokens file on open and keeps every token working", async () => {
    const path = write(
      fresh(),
      JSON.stringify({
        tokens: [
          { token: "acme-admin-token-000001", orgId: "acme", roles: ["admin"] },
          { token: "acme-ada-token-00000002", orgId: "acme", userId: "ada" },
        ],
      }),
    );
    const store = await TokenStore.open({ path });
    expect(store.migrated).toBe(2);
    const text = readFileSync(path, "utf8");
    expect(text).not.toMatch(/acme-admin-token|acme-ada-token|"token"/);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const reopened = await TokenStore.open({ path });
    expect(reopened.migrated).toBe(0);
    expect(reopened.list().map((r) => r.id)).toEqual(store.list().map((r) => r.id));
    const auth = new TokenAuthenticator(reopened);
    expect(auth.identify(bearer("acme-admin-token-000001"))).toEqual({ orgId: "acme", roles: ["admin"] });
    expect(auth.identify(bearer("acme-ada-token-00000002"))).toEqual({ orgId: "acme", userId: "ada", roles: [] });
  });

  it("refuses a file holding the same token twice, naming both lines, and changes nothing", async () => {
    const text = [
      "{",
      '  "tokens": [',
      '    { "token": "shared-token-0123456789", "orgId": "acme", "roles": ["admin"] },',
      '    { "token": "other-token-0123456789", "orgId": "acme" },',
      '    { "token": "shared-token-0123456789", "orgId": "beta", "roles": ["admin"] }',
      "  ]",
      "}",
    ].join("\n");
    const path = write(fresh(), text);
    const err = await TokenStore.open({ path }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toMatch(/line 5: the same token as line 3/);
    expect(readFileSync(path, "utf8")).toBe(text);
  });

  it("refuses malformed entries with their line number", async () => {
    const cases: [string, RegExp][] = [
      ['{"tokens": [\n{"token": "short", "orgId": "a"}\n]}', /line 2: "token" must be/],
      [
        '{"tokens": [\n{"token": "x0123456789abcdefgh", "orgId": "a"},\n{"token": "y0123456789abcdefgh", "orgId": "../etc"}]}',
        /line 3: .*orgId/,
      ],
      ['{"tokens": [\n\n{"token": "x0123456789abcdefgh", "orgId": "pub"}]}', /line 3: .*reserved/],
      [
        '{"tokens": [{"token": "x0123456789abcdefgh", "orgId": "a", "expires": "1d"}]}',
        /line 1: unknown field "expires"/,
      ],
      ['{"tokens": [{"token": "x0123456789abcdefgh", "orgId": "a", "roles": "admin"}]}', /"roles" must be an array/],
      ['{"tokens": [\n  {"orgId": "a",}\n]}', /line 2: not valid JSON/],
      ['{"tokens": {}}', /needs \{"tokens": \[\.\.\.\]\}/],
    ];
    for (const [text, message] of cases) {
      await expect(TokenStore.open({ path: write(fresh(), text) }), text).rejects.toThrow(message);
    }
  });

  it("adds, lists without secrets, expires and revokes tokens", async () => {
    const clock = new ManualClock(Date.parse("2026-01-01T00:00:00Z"));
    const store = await TokenStore.open({ path: fresh(), clock });
    const a = await store.add({ orgId: "acme", userId: "ada", roles: ["admin"], label: "ada's laptop" });
    const b = await store.add({ orgId: "beta", expiresInMs: 60_000 });
    expect(a.token).toMatch(/^sr_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    expect(store.list()).toEqual([a.record, b.record]);
    expect(store.list({ orgId: "beta" })).toEqual([b.record]);
    expect(JSON.stringify(store.list())).not.toMatch(/sha256|sr_/);
    expect(b.record.expiresAt).toBe("2026-01-01T00:01:00.000Z");
    expect(store.identify(b.token)?.orgId).toBe("beta");
    clock.advance(60_000);
    expect(store.identify(b.token)).toBeUndefined();
    await expect(store.add({ orgId: "acme", roles: ["Admin"] })).rejects.toThrow(/roles/);
    await expect(store.add({ orgId: "priv" })).rejects.toThrow(/reserved/);
    await expect(store.add({ orgId: "a", expiresAt: new Date(clock.now() - 1) })).rejects.toThrow(/future/);
    expect(await store.revoke(a.record.id)).toEqual(a.record);
    expect(store.identify(a.token)).toBeUndefined();
    await expect(store.revoke(a.record.id)).rejects.toThrow(NotFoundError);
    expect(store.list()).toEqual([b.record]);
  });

  it("never loses an add when several stores write the same file at once", async () => {
    const path = fresh();
    const stores = await Promise.all([0, 1, 2].map(() => TokenStore.open({ path })));
    const made = await Promise.all(
      Array.from({ length: 30 }, (_, i) => (stores[i % 3] as TokenStore).add({ orgId: "acme", label: `t${i}` })),
    );
    const reread = await TokenStore.open({ path });
    expect(reread.list().length).toBe(30);
    for (const m of made) expect(reread.identify(m.token)?.id).toBe(m.record.id);
  });

  it("picks up changes made by another writer while watching, and keeps the old tokens on a bad file", async () => {
    const path = fresh();
    const errors: unknown[] = [];
    const watching = await TokenStore.open({ path, watch: true, onReloadError: (e) => errors.push(e) });
    try {
      const other = await TokenStore.open({ path });
      const added = await other.add({ orgId: "acme" });
      await vi.waitFor(() => expect(watching.identify(added.token)?.id).toBe(added.record.id), { timeout: 5000 });
      await other.revoke(added.record.id);
      await vi.waitFor(() => expect(watching.identify(added.token)).toBeUndefined(), { timeout: 5000 });
      const kept = await other.add({ orgId: "acme" });
      await vi.waitFor(() => expect(watching.identify(kept.token)).toBeDefined(), { timeout: 5000 });
      writeFileSync(path, readFileSync(path, "utf8").replace('"orgId": "acme"', '"orgId": "ACME"'));
      await vi.waitFor(() => expect(errors.length).toBeGreaterThan(0), { timeout: 5000 });
      expect(watching.identify(kept.token)?.orgId).toBe("acme");
    } finally {
      watching.close();
    }
  });
});
