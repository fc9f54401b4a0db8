import { describe, expect, it } from "vitest";
import { AuditLog } from "../../src/bus/audit-log.js";
import { Broker } from "../../src/bus/broker.js";
import type { BrokerOptions } from "../../src/bus/broker-options.js";
import { BusClient } from "../../src/bus/bus-client.js";
import type { BusClientOptions } from "../../src/bus/bus-client-options.js";
import { MessageStore } from "../../src/bus/message-store.js";
import { InvalidArgumentError } from "../../src/errors.js";
import { openSqlite, tableExists } from "../../src/sql/index.js";
import { SECRET, TOKEN } from "./bus-fixtures.js";

const valid: BusClientOptions = {
  url: "ws://127.0.0.1:1/bus",
  name: "ada",
  token: "t",
  hmacSecret: SECRET,
  onMessage: () => undefined,
};

describe("BusClient options", () => {
  it("an option given as undefined means its default", () => {
    const client = new BusClient({
      ...valid,
      dedupeSize: undefined,
      minBackoffMs: undefined,
      maxBackoffMs: undefined,
      peersTimeoutMs: undefined,
      source: undefined,
      clock: undefined,
      headers: undefined,
    });
    expect(client.connected).toBe(false);
  });

  it("refuses a malformed option with InvalidArgumentError naming it", () => {
    const cases: [Partial<Record<keyof BusClientOptions, unknown>>, RegExp][] = [
      [{ dedupeSize: 0 }, /^dedupeSize must be a positive integer, got 0/],
      [{ dedupeSize: 1.5 }, /^dedupeSize must be a positive integer/],
      [{ minBackoffMs: 0 }, /^minBackoffMs must be a positive integer/],
      [{ maxBackoffMs: Number.NaN }, /^maxBackoffMs must be a positive integer/],
      [{ minBackoffMs: 500, maxBackoffMs: 100 }, /^maxBackoffMs must be at least minBackoffMs \(500\), got 100/],
      [{ peersTimeoutMs: -1 }, /^peersTimeoutMs must be a positive integer/],
      [{ url: "" }, /^url must be a non-empty string/],
      // What the WebSocket client would refuse later, inside connect(), with a raw SyntaxError.
      [{ url: "127.0.0.1:47821" }, /^url must be a ws:\/\/ or wss:\/\/ URL, got "127.0.0.1:47821"/],
      [{ url: "not a url" }, /^url must be a ws:\/\/ or wss:\/\/ URL/],
      [{ url: "ftp://127.0.0.1/bus" }, /^url must be a ws:\/\/ or wss:\/\/ URL/],
      [{ url: "ws://127.0.0.1:1/bus#x" }, /^url must not have a fragment/],
      [{ name: 42 }, /^name must be a non-empty string/],
      [{ token: undefined }, /^token must be a non-empty string/],
      [{ source: "" }, /^source must be a non-empty string/],
      [{ onMessage: undefined }, /^onMessage must be a function/],
      [{ onError: "log" }, /^onError must be a function/],
      [{ clock: { tick: 1 } }, /^clock must be a Clock/],
      [{ headers: "authorization: x" }, /^headers must be an object of header names to string values/],
      [{ headers: { authorization: 5 } }, /^headers must be an object/],
      [{ hmacSecret: undefined }, /^hmacSecret must be a string or bytes of at least 32 bytes/],
      [{ hmacSecret: "short" }, /^hmacSecret must be at least 32 bytes, got 5/],
    ];
    for (const [bad, message] of cases) {
      const build = () => new BusClient({ ...valid, ...bad } as BusClientOptions);
      expect(build, JSON.stringify(bad)).toThrow(InvalidArgumentError);
      expect(build, JSON.stringify(bad)).toThrow(message);
    }
  });
});

describe("Broker options", () => {
  it("refuses a malformed option with InvalidArgumentError naming it, before listening", async () => {
    const db = await openSqlite(":memory:");
    const store = await MessageStore.open({ database: db });
    const audit = await AuditLog.open({ database: db });
    const base: BrokerOptions = { store, audit, tokens: [TOKEN], hmacSecret: SECRET };
    const cases: [Partial<Record<keyof BrokerOptions, unknown>>, RegExp][] = [
      [{ maxFrameBytes: 0 }, /^maxFrameBytes must be a positive integer, got 0/], // ws reads 0 as "no limit"
      [{ maxCommitBatch: 1.5 }, /^maxCommitBatch must be a positive integer/],
      [{ commitWindowMs: Number.POSITIVE_INFINITY }, /^commitWindowMs must be an integer from 0/],
      [{ commitWindowMs: -1 }, /^commitWindowMs must be an integer from 0/],
      [{ bindingTtlMs: "1h" }, /^bindingTtlMs must be a non-negative number of ms/],
      [{ broadcastWindowMs: -1 }, /^broadcastWindowMs must be a non-negative number of ms/],
      [{ store: undefined }, /^store must be a MessageStore/],
      [{ store: {} }, /^store must be a MessageStore/],
      [{ audit: db }, /^audit must be an AuditLog/],
      [{ tokens: "t" }, /^tokens must be an array of non-empty strings/],
      [{ tokens: [] }, /^tokens must hold at least one token/],
      [{ tokens: [""] }, /^tokens must be non-empty strings/],
      [{ authenticate: true }, /^authenticate must be a function/],
      [{ authorizeRegistration: "all" }, /^authorizeRegistration must be a function/],
      [{ onError: 1 }, /^onError must be a function/],
      [{ persistentBindings: "yes" }, /^persistentBindings must be a boolean/],
      [{ clock: 5 }, /^clock must be a Clock/],
      [{ pruneIntervalMs: -1 }, /^pruneIntervalMs must be an integer from 0/],
      [{ hmacSecret: 42 }, /^hmacSecret must be a string or bytes/],
      [{ hmacSecret: "short" }, /^hmacSecret must be at least 32 bytes/],
    ];
    try {
      for (const [bad, message] of cases) {
        const build = () => new Broker({ ...base, ...bad } as BrokerOptions);
        expect(build, JSON.stringify(bad)).toThrow(InvalidArgumentError);
        expect(build, JSON.stringify(bad)).toThrow(message);
      }
      // Infinity keeps its documented meaning for bindings and broadcast copies.
      const forever = new Broker({
        ...base,
        bindingTtlMs: Infinity,
        broadcastWindowMs: Infinity,
        maxFrameBytes: undefined,
      });
      await forever.close();
    } finally {
      await db.close();
    }
  });
});

describe("MessageStore and AuditLog options", () => {
  it("open refuses a bad database, clock or migrate with InvalidArgumentError naming it, before migrating", async () => {
    const db = await openSqlite(":memory:");
    try {
      const cases: [Record<string, unknown>, RegExp][] = [
        [{ database: undefined }, /^database must be a storeroom Database/],
        [{ database: { run: () => {} } }, /^database must be a storeroom Database/],
        [{ database: db, clock: {} }, /^clock must be a Clock/],
        [{ database: db, migrate: "yes" }, /^migrate must be a boolean/],
      ];
      for (const [bad, message] of cases) {
        for (const open of [MessageStore.open, AuditLog.open]) {
          const attempt = open(bad as never);
          await expect(attempt, JSON.stringify(bad)).rejects.toBeInstanceOf(InvalidArgumentError);
          await expect(attempt, JSON.stringify(bad)).rejects.toThrow(message);
        }
      }
      expect(await tableExists(db, "bus_messages")).toBe(false);
    } finally {
      await db.close();
    }
  });
});
