import { strict as assert } from "node:assert";
import type { Tx } from "../kv/index.js";
import {
  assertBytes,
  bytes,
  putAll,
  rejectsWithCode,
  type StoreCase,
  scanKeys,
  text,
} from "./kv-conformance-helpers.js";

/** The core single-operation cases, plus value and key validation. */
export const basicCases: StoreCase[] = [
  {
    name: "CallbackRequired",
    async run(store) {
      for (const fn of [undefined, 5, "tx"]) {
        await rejectsWithCode(store.view(fn as never), "INVALID_ARGUMENT");
        await rejectsWithCode(store.update(fn as never), "INVALID_ARGUMENT");
      }
      await store.update((tx) => tx.put("ns", "k", bytes("v")));
    },
  },
  {
    name: "PutGet",
    async run(store) {
      await store.update((tx) => tx.put("ns", "k", bytes("v")));
      assertBytes(await store.view((tx) => tx.get("ns", "k")), bytes("v"));
    },
  },
  {
    name: "GetMissing",
    async run(store) {
      await rejectsWithCode(
        store.view((tx) => tx.get("ns", "absent")),
        "NOT_FOUND",
      );
    },
  },
  {
    name: "Overwrite",
    async run(store) {
      await store.update((tx) => tx.put("ns", "k", bytes("one")));
      await store.update((tx) => tx.put("ns", "k", bytes("two")));
      assert.equal(text(await store.view((tx) => tx.get("ns", "k"))), "two");
      assert.equal((await store.view((tx) => tx.scan("ns", ""))).length, 1);
    },
  },
  {
    name: "Delete",
    async run(store) {
      await putAll(store, "ns", { k: "v", other: "o" });
      await store.update((tx) => tx.delete("ns", "k"));
      await rejectsWithCode(
        store.view((tx) => tx.get("ns", "k")),
        "NOT_FOUND",
      );
      assert.deepEqual(await store.view((tx) => scanKeys(tx, "ns")), ["other"]);
    },
  },
  {
    name: "DeleteMissing",
    async run(store) {
      await store.update((tx) => tx.delete("ns", "absent"));
      assert.deepEqual(await store.view((tx) => tx.scan("ns", "")), []);
    },
  },
  {
    name: "EmptyValueRoundTrips",
    async run(store) {
      await store.update((tx) => tx.put("ns", "empty", new Uint8Array(0)));
      const value = await store.view((tx) => tx.get("ns", "empty"));
      assert.equal(value.length, 0);
      const entries = await store.view((tx) => tx.scan("ns", ""));
      assert.equal(entries.length, 1);
      assert.equal(entries[0]?.value.length, 0);
    },
  },
  {
    name: "NamespaceIsolation",
    async run(store) {
      await putAll(store, "a", { k: "in a" });
      await putAll(store, "b", { k: "in b" });
      assert.equal(text(await store.view((tx) => tx.get("a", "k"))), "in a");
      assert.equal(text(await store.view((tx) => tx.get("b", "k"))), "in b");
      await store.update((tx) => tx.delete("a", "k"));
      assert.equal(text(await store.view((tx) => tx.get("b", "k"))), "in b");
      await rejectsWithCode(
        store.view((tx) => tx.get("c", "k")),
        "NOT_FOUND",
      );
    },
  },
  {
    name: "UpdateRollback",
    async run(store) {
      await putAll(store, "ns", { k: "original" });
      const sentinel = new Error("sentinel");
      const err = await store
        .update(async (tx) => {
          await tx.put("ns", "k", bytes("changed"));
          await tx.put("ns", "new", bytes("new"));
          await tx.delete("ns", "k2");
          throw sentinel;
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      assert.equal(err, sentinel, "the callback's error is rethrown unchanged");
      assert.equal(text(await store.view((tx) => tx.get("ns", "k"))), "original");
      await rejectsWithCode(
        store.view((tx) => tx.get("ns", "new")),
        "NOT_FOUND",
      );
    },
  },
  {
    name: "ReadOwnWrites",
    async run(store) {
      await putAll(store, "ns", { gone: "x" });
      await store.update(async (tx) => {
        await tx.put("ns", "k", bytes("v"));
        assert.equal(text(await tx.get("ns", "k")), "v");
        await tx.delete("ns", "gone");
        await rejectsWithCode(tx.get("ns", "gone"), "NOT_FOUND");
        assert.deepEqual(await scanKeys(tx, "ns"), ["k"]);
      });
    },
  },
  {
    name: "ViewIsReadOnly",
    async run(store) {
      await putAll(store, "ns", { k: "v" });
      await store.view(async (tx) => {
        await rejectsWithCode(tx.put("ns", "k", bytes("changed")), "READ_ONLY");
        await rejectsWithCode(tx.put("ns", "new", bytes("new")), "READ_ONLY");
        await rejectsWithCode(tx.delete("ns", "k"), "READ_ONLY");
        assert.equal(text(await tx.get("ns", "k")), "v");
      });
      assert.deepEqual(await store.view((tx) => scanKeys(tx, "ns")), ["k"]);
      assert.equal(text(await store.view((tx) => tx.get("ns", "k"))), "v");
    },
  },
  {
    name: "ValueIsolation",
    async run(store) {
      const input = bytes("abc");
      await store.update(async (tx) => {
        await tx.put("ns", "k", input);
        input[0] = 0x7a;
        assert.equal(text(await tx.get("ns", "k")), "abc", "a staged value does not alias the input");
      });
      const out = await store.view((tx) => tx.get("ns", "k"));
      assert.equal(text(out), "abc");
      out[1] = 0x7a;
      const scanned = await store.view((tx) => tx.scan("ns", ""));
      (scanned[0] as { value: Uint8Array }).value[2] = 0x7a;
      assert.equal(text(await store.view((tx) => tx.get("ns", "k"))), "abc");
    },
  },
  {
    name: "Ping",
    async run(store) {
      await store.ping();
    },
  },
  {
    name: "ViewAndUpdateResolveToTheCallbackResult",
    async run(store) {
      assert.equal(await store.update(async () => 42), 42);
      assert.deepEqual(await store.view(async () => ({ ok: true })), { ok: true });
    },
  },
  {
    name: "TxUnusableAfterCallback",
    async run(store) {
      let kept: Tx | undefined;
      await store.update(async (tx) => {
        kept = tx;
      });
      const tx = kept as Tx;
      await rejectsWithCode(tx.put("ns", "late", bytes("x")), "TRANSACTION");
      await rejectsWithCode(tx.get("ns", "late"), "TRANSACTION");
      await rejectsWithCode(tx.delete("ns", "late"), "TRANSACTION");
      await rejectsWithCode(tx.scan("ns", ""), "TRANSACTION");
      await store.view(async (viewTx) => {
        kept = viewTx;
      });
      const view = kept as Tx;
      await rejectsWithCode(view.get("ns", "late"), "TRANSACTION");
      await rejectsWithCode(view.scan("ns", ""), "TRANSACTION");
      await rejectsWithCode(view.put("ns", "late", bytes("x")), "TRANSACTION");
      await rejectsWithCode(view.delete("ns", "late"), "TRANSACTION");
      await rejectsWithCode(
        store.view((t) => t.get("ns", "late")),
        "NOT_FOUND",
      );
    },
  },
  {
    name: "InvalidKeysAndValuesAreRejected",
    async run(store) {
      await store.update(async (tx) => {
        await rejectsWithCode(tx.put("ns", "bad\ud800", bytes("x")), "INVALID_KEY");
        await rejectsWithCode(tx.put("bad\udc00", "k", bytes("x")), "INVALID_KEY");
        await rejectsWithCode(tx.put("ns", 7 as unknown as string, bytes("x")), "INVALID_KEY");
        await rejectsWithCode(tx.put("ns", "k", "text" as unknown as Uint8Array), "INVALID_ARGUMENT");
        await rejectsWithCode(tx.get("ns", "\udfff"), "INVALID_KEY");
      });
      assert.deepEqual(await store.view((tx) => tx.scan("ns", "")), []);
    },
  },
  {
    name: "LargeValue1MiB",
    async run(store) {
      const big = new Uint8Array(1024 * 1024);
      for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >> 8)) & 0xff;
      await store.update((tx) => tx.put("blobs", "big", big));
      const out = await store.view((tx) => tx.get("blobs", "big"));
      assert.equal(out.length, big.length);
      assert.ok(Buffer.from(out).equals(Buffer.from(big)), "1 MiB value round-trips byte for byte");
    },
  },
  {
    name: "ClosedStore",
    async run(store) {
      await store.close();
      await store.close();
      await rejectsWithCode(store.ping(), "CLOSED");
      await rejectsWithCode(
        store.view(async () => undefined),
        "CLOSED",
      );
      await rejectsWithCode(
        store.update(async () => undefined),
        "CLOSED",
      );
      await rejectsWithCode(store.migrate(), "CLOSED");
    },
  },
];
