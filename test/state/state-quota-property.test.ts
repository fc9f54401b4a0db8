import fc from "fast-check";
import { expect, it } from "vitest";
import { QuotaExceededError } from "../../src/errors.js";
import { forEachEngine } from "./state-harness.js";

type Op =
  | { kind: "set"; group: number; key: number }
  | { kind: "ttl"; group: number; key: number; ttl: number }
  | { kind: "delete"; group: number; key: number }
  | { kind: "advance"; ms: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("set" as const), group: fc.nat(3), key: fc.nat(4) }),
  fc.record({
    kind: fc.constant("ttl" as const),
    group: fc.nat(3),
    key: fc.nat(4),
    ttl: fc.integer({ min: 1, max: 50 }),
  }),
  fc.record({ kind: fc.constant("delete" as const), group: fc.nat(3), key: fc.nat(4) }),
  fc.record({ kind: fc.constant("advance" as const), ms: fc.integer({ min: 1, max: 40 }) }),
);

forEachEngine("ScopedStateStore quota property", (h) => {
  it("property: scoped writes succeed exactly when the model allows them, and limits always hold", async () => {
    const s = await h.open();
    let round = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 6 }),
        fc.integer({ min: 0, max: 3 }),
        fc.array(op, { minLength: 1, maxLength: 25 }),
        async (maxKeys, maxGroups, ops) => {
          const t = s.scoped(`p${round++}`, { maxKeys, maxGroups });
          // Model: "group/key" -> expiry (Infinity when persistent).
          const model = new Map<string, number>();
          const live = () => [...model].filter(([, at]) => h.clock.now() < at).map(([k]) => k);
          for (const o of ops) {
            if (o.kind === "advance") {
              h.clock.advance(o.ms);
              continue;
            }
            const id = `g${o.group}/k${o.key}`;
            if (o.kind === "delete") {
              await t.delete(`g${o.group}`, `k${o.key}`);
              model.delete(id);
              continue;
            }
            const liveKeys = live();
            const liveGroups = new Set(liveKeys.map((k) => k.split("/")[0]));
            const overwrite = liveKeys.includes(id);
            const allowed =
              overwrite ||
              ((maxKeys === 0 || liveKeys.length < maxKeys) &&
                (maxGroups === 0 || liveGroups.has(`g${o.group}`) || liveGroups.size < maxGroups));
            const write =
              o.kind === "set"
                ? t.setIn(`g${o.group}`, `k${o.key}`, "v")
                : t.setWithTtl(`g${o.group}`, `k${o.key}`, "v", o.ttl);
            const outcome = await write.then(
              () => "ok",
              (e: unknown) => (e instanceof QuotaExceededError ? "quota" : e),
            );
            expect(outcome).toBe(allowed ? "ok" : "quota");
            if (allowed) model.set(id, o.kind === "set" ? Number.POSITIVE_INFINITY : h.clock.now() + o.ttl);
            const count = await t.countAll();
            expect(count).toBe(live().length);
            if (maxKeys > 0) expect(count).toBeLessThanOrEqual(maxKeys);
            if (maxGroups > 0) expect((await t.groups()).length).toBeLessThanOrEqual(maxGroups);
          }
        },
      ),
      { numRuns: h.engine === "sqlite" ? 80 : 15 },
    );
  });
});
