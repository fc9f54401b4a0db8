import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { openStore, type ScanRange, type Store, type Tx } from "../../src/kv/index.js";

/** Few characters, so keys collide and prefix each other; they straddle the UTF-16/UTF-8 order split. */
const chars = ["a", "\u0000", "%", "_", "é", "\uffff", "\u{10000}", "😀"];
const keyArb = fc.array(fc.constantFrom(...chars), { maxLength: 3 }).map((parts) => parts.join(""));
const nsArb = fc.constantFrom("n1", "n\u00002");
const rangeArb: fc.Arbitrary<ScanRange> = fc.record(
  {
    prefix: keyArb,
    start: keyArb,
    end: keyArb,
    limit: fc.nat({ max: 6 }),
    reverse: fc.boolean(),
  },
  { requiredKeys: [] },
);

type Op =
  | { kind: "put"; ns: string; key: string; value: number[] }
  | { kind: "delete"; ns: string; key: string }
  | { kind: "get"; ns: string; key: string }
  | { kind: "scan"; ns: string; range: ScanRange | string };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant("put" as const),
    ns: nsArb,
    key: keyArb,
    value: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 4 }),
  }),
  fc.record({ kind: fc.constant("delete" as const), ns: nsArb, key: keyArb }),
  fc.record({ kind: fc.constant("get" as const), ns: nsArb, key: keyArb }),
  fc.record({ kind: fc.constant("scan" as const), ns: nsArb, range: fc.oneof(keyArb, rangeArb) }),
);
const batchArb = fc.record({
  ops: fc.array(opArb, { maxLength: 12 }),
  commit: fc.oneof({ arbitrary: fc.constant(true), weight: 3 }, { arbitrary: fc.constant(false), weight: 1 }),
});

const utf8 = (s: string): Buffer => Buffer.from(s, "utf8");

/** The reference: a Map per namespace, scanned by sorting on UTF-8 bytes. */
class Model {
  readonly data = new Map<string, number[]>();

  clone(): Model {
    const copy = new Model();
    for (const [k, v] of this.data) copy.data.set(k, v);
    return copy;
  }

  scan(ns: string, arg: ScanRange | string): [string, number[]][] {
    const r: ScanRange = typeof arg === "string" ? { prefix: arg } : arg;
    const rows = [...this.data]
      .map(([id, v]) => [JSON.parse(id) as [string, string], v] as const)
      .filter(([[n, k]]) => n === ns && k.startsWith(r.prefix ?? ""))
      .filter(([[, k]]) => r.start === undefined || Buffer.compare(utf8(k), utf8(r.start)) >= 0)
      .filter(([[, k]]) => r.end === undefined || Buffer.compare(utf8(k), utf8(r.end)) < 0)
      .map(([[, k], v]) => [k, v] as [string, number[]])
      .sort(([a], [b]) => Buffer.compare(utf8(a), utf8(b)));
    if (r.reverse) rows.reverse();
    return rows.slice(0, r.limit ?? rows.length);
  }
}

async function apply(tx: Tx, model: Model, op: Op): Promise<void> {
  const id = JSON.stringify([op.ns, "key" in op ? op.key : ""]);
  if (op.kind === "put") {
    await tx.put(op.ns, op.key, Uint8Array.from(op.value));
    model.data.set(id, op.value);
  } else if (op.kind === "delete") {
    await tx.delete(op.ns, op.key);
    model.data.delete(id);
  } else if (op.kind === "get") {
    const expected = model.data.get(id);
    const actual = await tx.get(op.ns, op.key).then(
      (v) => [...v],
      (err: { code?: string }) => (err.code === "NOT_FOUND" ? undefined : Promise.reject(err)),
    );
    expect(actual).toEqual(expected);
  } else {
    const actual = (await tx.scan(op.ns, op.range)).map((e) => [e.key, [...e.value]]);
    expect(actual).toEqual(model.scan(op.ns, op.range));
  }
}

async function check(open: () => Promise<Store>, batches: { ops: Op[]; commit: boolean }[]): Promise<void> {
  const store = await open();
  let model = new Model();
  const rollback = new Error("rollback");
  try {
    for (const batch of batches) {
      const staged = model.clone();
      await store
        .update(async (tx) => {
          for (const op of batch.ops) await apply(tx, staged, op);
          if (!batch.commit) throw rollback;
        })
        .catch((err: unknown) => {
          if (err !== rollback) throw err;
        });
      if (batch.commit) model = staged;
      await store.view(async (tx) => {
        for (const ns of ["n1", "n\u00002"]) await apply(tx, model, { kind: "scan", ns, range: "" });
      });
    }
  } finally {
    await store.close();
  }
}

describe("kv drivers agree with a sorted-Map model", () => {
  for (const [driver, runs] of [
    ["memory", 150],
    ["sqlite", 60],
  ] as const) {
    it(`${driver}: random put/delete/get/scan batches, committed or rolled back`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(batchArb, { maxLength: 8 }), (batches) =>
          check(() => openStore(driver, ":memory:"), batches),
        ),
        { numRuns: runs },
      );
    }, 60_000);
  }
});
