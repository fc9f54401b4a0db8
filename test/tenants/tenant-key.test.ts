import { relative } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InvalidKeyError } from "../../src/errors.js";
import { CAS, TenantKey } from "../../src/tenants/index.js";

describe("TenantKey", () => {
  it("maps user and org keys to object keys, local paths and strings", () => {
    const user = TenantKey.user("acme", "ada");
    expect(user.objectKey()).toBe("acme/users/ada.db");
    expect(user.localPath("/cache")).toBe("/cache/acme/users/ada.db");
    expect(user.toString()).toBe("acme/users/ada");
    const org = TenantKey.org("acme");
    expect(org.objectKey()).toBe("acme/org.db");
    expect(org.localPath("/cache")).toBe("/cache/acme/org.db");
    expect(org.toString()).toBe("acme/org");
    expect(new TenantKey({ orgId: "acme", userId: "ada" }).scope).toBe("user");
    expect(new TenantKey({ orgId: "acme", userId: "ada", scope: "org" }).userId).toBeUndefined();
  });

  it.each([
    ["../etc", "ada"],
    ["acme", "../passwd"],
    ["UPPER", "ada"],
    ["", "ada"],
    ["acme", ""],
    ["acme has space", "ada"],
    ["acme", "a.b"],
    ["acme", "a/b"],
    ["acme", "x".repeat(129)],
    ["é", "ada"],
  ])("rejects org %j user %j with InvalidKeyError", (orgId, userId) => {
    expect(() => TenantKey.user(orgId, userId).validate()).toThrow(InvalidKeyError);
  });

  it("rejects an org key without org, a bad scope and non-string slugs", () => {
    expect(() => TenantKey.org("").validate()).toThrow(InvalidKeyError);
    expect(() => new TenantKey({ orgId: "a", scope: "team" as never }).validate()).toThrow(InvalidKeyError);
    expect(() => new TenantKey({ orgId: 42 as never }).validate()).toThrow(InvalidKeyError);
    expect(() => new TenantKey({ orgId: "acme", scope: "user" }).validate()).toThrow(InvalidKeyError);
  });

  it("accepts slugs up to 128 bytes of [a-z0-9_-] and ignores the user of an org key", () => {
    for (const slug of ["a", "acme-corp_01", "x".repeat(128), "01hq3xk5z9"]) {
      expect(() => TenantKey.user(slug, slug).validate()).not.toThrow();
    }
    expect(() => new TenantKey({ orgId: "acme", userId: "NOT VALID", scope: "org" }).validate()).not.toThrow();
  });

  it("parses object keys back and skips everything else", () => {
    expect(TenantKey.fromObjectKey("acme/users/ada.db")?.equals(TenantKey.user("acme", "ada"))).toBe(true);
    expect(TenantKey.fromObjectKey("acme/org.db")?.equals(TenantKey.org("acme"))).toBe(true);
    for (const other of ["acme/users/ada.db.tmp", "acme/other.db", "../x/org.db", "Acme/org.db", "acme/users/a/b.db"]) {
      expect(TenantKey.fromObjectKey(other)).toBeUndefined();
    }
  });

  it("parses its string form and rejects anything else", () => {
    expect(TenantKey.parse("acme/users/ada").equals(TenantKey.user("acme", "ada"))).toBe(true);
    expect(TenantKey.parse("acme/org").equals(TenantKey.org("acme"))).toBe(true);
    for (const bad of ["acme", "acme/users", "acme/users/ADA", "../x/org", "acme/team/x", "a/users/b/c"]) {
      expect(() => TenantKey.parse(bad)).toThrow(InvalidKeyError);
    }
  });

  it("any string either fails validation or yields paths inside the cache that round-trip (property)", () => {
    const slug = fc.oneof(
      fc.string({ maxLength: 140 }),
      fc.stringMatching(/^[a-z0-9_-]{1,130}$/),
      fc.constantFrom("..", ".", "a/b", "a\\b", "%2e%2e", "a\u0000b"),
    );
    fc.assert(
      fc.property(slug, slug, fc.boolean(), (orgId, userId, org) => {
        const key = org ? TenantKey.org(orgId) : TenantKey.user(orgId, userId);
        try {
          key.validate();
        } catch (err) {
          expect(err).toBeInstanceOf(InvalidKeyError);
          return;
        }
        const rel = relative("/cache", key.localPath("/cache"));
        expect(rel.startsWith("..")).toBe(false);
        expect(rel).toBe(key.objectKey());
        expect(TenantKey.fromObjectKey(key.objectKey())?.equals(key)).toBe(true);
        expect(TenantKey.parse(key.toString()).equals(key)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it("exposes CAS = true", () => {
    expect(CAS).toBe(true);
  });
});
