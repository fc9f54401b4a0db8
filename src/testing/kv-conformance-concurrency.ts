import { strict as assert } from "node:assert";
import { bytes, type StoreCase, text } from "./kv-conformance-helpers.js";

function readCounter(value: Uint8Array): number {
  return Number(text(value));
}

/** Many interleaved async callers on one store. */
export const concurrencyCases: StoreCase[] = [
  {
    name: "Concurrency",
    async run(store) {
      const workers = 8;
      const perWorker = 25;
      await Promise.all(
        Array.from({ length: workers }, async (_, w) => {
          for (let i = 0; i < perWorker; i++) {
            const key = `w${w}:${String(i).padStart(3, "0")}`;
            await store.update((tx) => tx.put("conc", key, bytes(key)));
            assert.equal(text(await store.view((tx) => tx.get("conc", key))), key);
            const mine = await store.view((tx) => tx.scan("conc", `w${w}:`));
            assert.equal(mine.length, i + 1);
          }
        }),
      );
      assert.equal((await store.view((tx) => tx.scan("conc", ""))).length, workers * perWorker);
    },
  },
  {
    name: "NoLostUpdatesUnderConcurrentUpdates",
    async run(store, options) {
      const { workers, increments } = options.lostUpdate ?? { workers: 8, increments: 100 };
      await store.update((tx) => tx.put("counters", "n", bytes("0")));
      await Promise.all(
        Array.from({ length: workers }, async () => {
          for (let i = 0; i < increments; i++) {
            await store.update(async (tx) => {
              const n = readCounter(await tx.get("counters", "n"));
              await tx.put("counters", "n", bytes(String(n + 1)));
            });
          }
        }),
      );
      assert.equal(readCounter(await store.view((tx) => tx.get("counters", "n"))), workers * increments);
    },
  },
  {
    name: "ViewsSeeAtomicCommits",
    async run(store) {
      const total = 1000;
      await store.update(async (tx) => {
        await tx.put("bank", "a", bytes(String(total)));
        await tx.put("bank", "b", bytes("0"));
      });
      const transfers = Array.from({ length: 40 }, () =>
        store.update(async (tx) => {
          const a = readCounter(await tx.get("bank", "a"));
          const b = readCounter(await tx.get("bank", "b"));
          await tx.put("bank", "a", bytes(String(a - 10)));
          await tx.put("bank", "b", bytes(String(b + 10)));
        }),
      );
      const audits = Array.from({ length: 40 }, () =>
        store.view(async (tx) => {
          const a = readCounter(await tx.get("bank", "a"));
          await new Promise((resolve) => setImmediate(resolve));
          const b = readCounter(await tx.get("bank", "b"));
          assert.equal(a + b, total, "a view reads one snapshot");
        }),
      );
      await Promise.all([...transfers, ...audits]);
      assert.equal(readCounter(await store.view((tx) => tx.get("bank", "b"))), 400);
    },
  },
];
