import { strict as assert } from "node:assert";
import { STORE_MIGRATIONS_NAMESPACE } from "../kv/index.js";
import { bytes, putAll, type StoreCase, scanKeys, text, utf8Sorted } from "./kv-conformance-helpers.js";

const twenty = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${String(i).padStart(2, "0")}`, `v${i}`]));

/** Prefix scans, range scans and key encoding. */
export const scanCases: StoreCase[] = [
  {
    name: "ScanOrderedAndPrefixed",
    async run(store) {
      await putAll(store, "ns", { "task:3": "c", "task:1": "a", other: "o", "task:2": "b" });
      const tasks = await store.view((tx) => tx.scan("ns", "task:"));
      assert.deepEqual(
        tasks.map((e) => [e.key, text(e.value)]),
        [
          ["task:1", "a"],
          ["task:2", "b"],
          ["task:3", "c"],
        ],
      );
      assert.deepEqual(await store.view((tx) => scanKeys(tx, "ns", "")), ["other", "task:1", "task:2", "task:3"]);
      assert.deepEqual(await store.view((tx) => scanKeys(tx, "ns")), ["other", "task:1", "task:2", "task:3"]);
    },
  },
  {
    name: "ScanWithWildcardPrefix",
    async run(store) {
      await putAll(store, "ns", { "a%b": "1", a_c: "2", abc: "3", "a\\d": "4", axe: "5", A_c: "6" });
      assert.deepEqual(await store.view((tx) => scanKeys(tx, "ns", "a%")), ["a%b"]);
      assert.deepEqual(await store.view((tx) => scanKeys(tx, "ns", "a_")), ["a_c"]);
      assert.deepEqual(await store.view((tx) => scanKeys(tx, "ns", "a\\")), ["a\\d"]);
      assert.deepEqual(await store.view((tx) => scanKeys(tx, "ns", "%")), []);
    },
  },
  {
    name: "RangeScanWithLimitAndReverse",
    async run(store) {
      await putAll(store, "ns", { ...twenty, j: "before", l: "after" });
      await store.view(async (tx) => {
        assert.deepEqual(await scanKeys(tx, "ns", { prefix: "k", limit: 3 }), ["k00", "k01", "k02"]);
        assert.deepEqual(await scanKeys(tx, "ns", { prefix: "k", limit: 3, reverse: true }), ["k19", "k18", "k17"]);
        assert.deepEqual(await scanKeys(tx, "ns", { start: "k05", end: "k08" }), ["k05", "k06", "k07"]);
        assert.deepEqual(await scanKeys(tx, "ns", { start: "k05", end: "k08", reverse: true }), ["k07", "k06", "k05"]);
        assert.deepEqual(await scanKeys(tx, "ns", { prefix: "k1", start: "k0", end: "k13" }), ["k10", "k11", "k12"]);
        assert.deepEqual(await scanKeys(tx, "ns", { end: "k01" }), ["j", "k00"]);
        assert.deepEqual(await scanKeys(tx, "ns", { start: "k19\u0000" }), ["l"]);
        assert.deepEqual(await scanKeys(tx, "ns", { prefix: "k", limit: 0 }), []);
        assert.deepEqual(await scanKeys(tx, "ns", { start: "k09", end: "k02" }), []);
      });
    },
  },
  {
    name: "RangeScanCursorPagination",
    async run(store) {
      await putAll(store, "ns", { ...twenty, x: "outside" });
      const forward: string[] = [];
      let start: string | undefined;
      for (;;) {
        const page = await store.view((tx) => scanKeys(tx, "ns", { prefix: "k", start, limit: 7 }));
        forward.push(...page);
        if (page.length < 7) break;
        start = `${page[page.length - 1]}\u0000`;
      }
      assert.deepEqual(forward, Object.keys(twenty));
      const backward: string[] = [];
      let end: string | undefined;
      for (;;) {
        const page = await store.view((tx) => scanKeys(tx, "ns", { prefix: "k", end, limit: 6, reverse: true }));
        backward.push(...page);
        if (page.length < 6) break;
        end = page[page.length - 1];
      }
      assert.deepEqual(backward, Object.keys(twenty).reverse());
    },
  },
  {
    name: "RangeScanSeesOwnWrites",
    async run(store) {
      await putAll(store, "ns", twenty);
      await store.update(async (tx) => {
        await tx.delete("ns", "k00");
        await tx.put("ns", "k005", bytes("new"));
        await tx.put("ns", "k19", bytes("changed"));
        assert.deepEqual(await scanKeys(tx, "ns", { prefix: "k", limit: 3 }), ["k005", "k01", "k02"]);
        const last = await tx.scan("ns", { prefix: "k", limit: 1, reverse: true });
        assert.equal(text(last[0]?.value ?? new Uint8Array()), "changed");
      });
    },
  },
  {
    name: "RangeScanRejectsBadArguments",
    async run(store) {
      await store.view(async (tx) => {
        for (const limit of [-1, 1.5, Number.NaN]) {
          await tx.scan("ns", { limit }).then(
            () => assert.fail(`limit ${limit} accepted`),
            (err: { code?: string }) => assert.equal(err.code, "INVALID_ARGUMENT"),
          );
        }
        await tx.scan("ns", { start: "\ud800" }).then(
          () => assert.fail("lone surrogate accepted"),
          (err: { code?: string }) => assert.equal(err.code, "INVALID_KEY"),
        );
      });
    },
  },
  {
    name: "UnicodeAndNulKeys",
    async run(store) {
      const keys = [
        "",
        "\u0000",
        "a",
        "a\u0000",
        "a\u0000b",
        "a\u0001",
        "é",
        "日本",
        "\uffff",
        "\u{10000}",
        "😀",
        "%_\\",
      ];
      await store.update(async (tx) => {
        for (const key of keys) await tx.put("uni\u0000ns", key, bytes(`v:${key}`));
        await tx.put("uni", "\u0000", bytes("other namespace"));
      });
      await store.view(async (tx) => {
        for (const key of keys) assert.equal(text(await tx.get("uni\u0000ns", key)), `v:${key}`);
        assert.equal(text(await tx.get("uni", "\u0000")), "other namespace");
        const order = await scanKeys(tx, "uni\u0000ns", "");
        assert.deepEqual(order, utf8Sorted(keys));
        assert.ok(order.indexOf("\uffff") < order.indexOf("\u{10000}"), "U+FFFF sorts before U+10000 (UTF-8 order)");
        assert.deepEqual(await scanKeys(tx, "uni\u0000ns", "a\u0000"), ["a\u0000", "a\u0000b"]);
        assert.deepEqual(await scanKeys(tx, "uni", ""), ["\u0000"]);
      });
    },
  },
  {
    name: "FreshStoreHasNoMigrationRecords",
    async run(store) {
      assert.deepEqual(await store.view((tx) => tx.scan(STORE_MIGRATIONS_NAMESPACE, "")), []);
    },
  },
];
