import { InvalidArgumentError } from "../errors.js";
import type { BatchOperation, StateEntry, StateEvent, StateStore } from "../state/index.js";

/** Options of {@link storeroomDriver}. */
export interface StoreroomDriverOptions {
  /** The state store holding the items. The caller opens and closes it. */
  state: StateStore;
  /** The state group the items live in. Default `"unstorage"`. */
  group?: string;
  /** A key prefix inside the group (`"cache"` stores `a:b` as `cache:a:b`), as unstorage drivers' `base`. Default none. */
  base?: string;
  /** Default time to live in seconds for `setItem` without a `ttl` option. Default none (no expiry). */
  ttl?: number;
}

/** unstorage's per-call options as the driver reads them. */
export interface StoreroomDriverCallOptions {
  /** Time to live in seconds for this write. */
  ttl?: number;
  [option: string]: unknown;
}

/** What {@link StoreroomDriver.getMeta} reports. */
export interface StoreroomItemMeta {
  /** When the item was last written (the store's clock); absent for entries written around the driver. */
  mtime?: Date;
  /** Seconds until the item expires, when it has a TTL. */
  ttl?: number;
  /** Size of the stored value in bytes (UTF-8 for strings). */
  size: number;
  [field: string]: Date | number | undefined;
}

/** The driver object; the shape unstorage's `createStorage({ driver })` and `storage.mount` take. */
export interface StoreroomDriver {
  readonly name: "storeroom";
  readonly flags: { readonly ttl: true };
  readonly options: Readonly<StoreroomDriverOptions>;
  getInstance(): StateStore;
  hasItem(key: string, opts?: StoreroomDriverCallOptions): Promise<boolean>;
  getItem(key: string, opts?: StoreroomDriverCallOptions): Promise<string | null>;
  getItems(
    items: readonly { key: string; options?: StoreroomDriverCallOptions }[],
    common?: StoreroomDriverCallOptions,
  ): Promise<{ key: string; value: string | null }[]>;
  getItemRaw(key: string, opts?: StoreroomDriverCallOptions): Promise<Uint8Array | string | null>;
  setItem(key: string, value: string, opts?: StoreroomDriverCallOptions): Promise<void>;
  setItems(
    items: readonly { key: string; value: string; options?: StoreroomDriverCallOptions }[],
    common?: StoreroomDriverCallOptions,
  ): Promise<void>;
  setItemRaw(key: string, value: unknown, opts?: StoreroomDriverCallOptions): Promise<void>;
  removeItem(key: string, opts?: StoreroomDriverCallOptions): Promise<void>;
  getMeta(key: string, opts?: StoreroomDriverCallOptions): Promise<StoreroomItemMeta | null>;
  getKeys(base?: string, opts?: StoreroomDriverCallOptions): Promise<string[]>;
  clear(base?: string, opts?: StoreroomDriverCallOptions): Promise<void>;
  watch(callback: (event: "update" | "remove", key: string) => void): Promise<() => void>;
}

// Each item is one state entry whose value is this JSON envelope: the write time travels with
// the value (state entries keep none), and raw bytes are kept apart from strings.
interface Envelope {
  /** Write time, ms on the store's clock. */
  mtime: number;
  /** A string value. */
  value?: string;
  /** Raw bytes, base64. */
  raw?: string;
}

const PAGE = 500;

/**
 * An unstorage driver over a {@link StateStore}: every item is an entry of one state group,
 * its key the unstorage key (`a:b:c`, after the driver's `base`), with native TTL (`ttl` in
 * seconds, per call or as a default), modification time and size in `getMeta`, raw values
 * as `Uint8Array`, and `watch` fed by the store's change events (writes through this
 * `StateStore` instance, including expiries it purges).
 *
 * @example
 * ```ts
 * import { createStorage } from "unstorage";
 * import storeroomDriver from "storeroom/unstorage";
 *
 * const storage = createStorage({ driver: storeroomDriver({ state }) });
 * await storage.setItem("users:ada", { role: "admin" }, { ttl: 3600 });
 * ```
 */
export function storeroomDriver(options: StoreroomDriverOptions): StoreroomDriver {
  const state = options?.state;
  if (state === undefined || typeof state.getEntry !== "function") {
    throw new InvalidArgumentError("state must be a StateStore", { op: "unstorage.open" });
  }
  const group = options.group ?? "unstorage";
  if (typeof group !== "string" || group === "")
    throw new InvalidArgumentError("group must be a non-empty string", { op: "unstorage.open" });
  const base = normalizeBase(options.base);
  const defaultTtl = options.ttl;
  if (defaultTtl !== undefined) checkTtl("ttl", defaultTtl);
  const clock = state.config.clock;
  const stored = (key: string) => base + key;

  const ttlMs = (opts: StoreroomDriverCallOptions | undefined): { ttlMs?: number } => {
    const ttl = opts?.ttl ?? defaultTtl;
    if (ttl === undefined) return {};
    checkTtl("ttl", ttl);
    return { ttlMs: ttl * 1000 };
  };
  const keysUnder = async (prefix: string): Promise<string[]> => {
    const keys: string[] = [];
    for (let offset = 0; ; offset += PAGE) {
      const page = await state.getEntries(group, { keyPrefix: base + prefix, offset, limit: PAGE });
      for (const e of page) keys.push(e.key.slice(base.length));
      if (page.length < PAGE) return keys;
    }
  };
  const write = (value: Pick<Envelope, "value" | "raw">) => JSON.stringify({ mtime: clock.now(), ...value });

  return {
    name: "storeroom",
    flags: { ttl: true },
    options: Object.freeze({ ...options }),
    getInstance: () => state,
    async hasItem(key) {
      return state.exists(group, stored(key));
    },
    async getItem(key) {
      return asString(await state.getEntry(group, stored(key)));
    },
    async getItems(items) {
      const entries = await Promise.all(items.map((i) => state.getEntry(group, stored(i.key))));
      return items.map((item, i) => ({ key: item.key, value: asString(entries[i] ?? null) }));
    },
    async getItemRaw(key) {
      const envelope = open(await state.getEntry(group, stored(key)));
      if (envelope === null) return null;
      if (envelope.raw === undefined) return envelope.value ?? null;
      const bytes = Buffer.from(envelope.raw, "base64");
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
    async setItem(key, value, opts) {
      if (typeof value !== "string")
        throw new InvalidArgumentError(`setItem value must be a string, got ${typeof value}`, {
          op: "unstorage.setItem",
        });
      await state.set(group, stored(key), write({ value }), ttlMs(opts));
    },
    async setItems(items, common) {
      const operations: BatchOperation[] = items.map((item) => ({
        type: "set",
        group,
        key: stored(item.key),
        value: write({ value: item.value }),
        ...ttlMs({ ...common, ...item.options }),
      }));
      await state.batch(operations);
    },
    async setItemRaw(key, value, opts) {
      await state.set(group, stored(key), write({ raw: Buffer.from(bytesOf(value)).toString("base64") }), ttlMs(opts));
    },
    async removeItem(key) {
      await state.delete(group, stored(key));
    },
    async getMeta(key) {
      const entry = await state.getEntry(group, stored(key));
      const envelope = open(entry);
      if (entry === null || envelope === null) return null;
      const size =
        envelope.raw !== undefined
          ? Buffer.byteLength(envelope.raw, "base64")
          : Buffer.byteLength(envelope.value ?? "", "utf8");
      return {
        ...(Number.isNaN(envelope.mtime) ? {} : { mtime: new Date(envelope.mtime) }),
        size,
        ...(entry.expiresAt === null ? {} : { ttl: Math.max(0, Math.ceil((entry.expiresAt - clock.now()) / 1000)) }),
      };
    },
    async getKeys(prefix = "") {
      return keysUnder(prefix);
    },
    async clear(prefix = "") {
      // Item by item (in atomic batches), so watchers hear a "remove" for every key.
      const keys = await keysUnder(prefix);
      for (let i = 0; i < keys.length; i += PAGE) {
        await state.batch(keys.slice(i, i + PAGE).map((key) => ({ type: "delete", group, key: stored(key) })));
      }
    },
    async watch(callback) {
      return state.onChange((event: StateEvent) => {
        if (event.group !== group || !event.key.startsWith(base)) return;
        if (event.type === "set") callback("update", event.key.slice(base.length));
        else if (event.type === "delete") callback("remove", event.key.slice(base.length));
        // Removing the whole group (outside this driver) removed every item under the mount.
        else if (event.type === "delete_group") callback("remove", "");
      });
    },
  };
}

function normalizeBase(base: string | undefined): string {
  if (base === undefined) return "";
  if (typeof base !== "string") throw new InvalidArgumentError("base must be a string", { op: "unstorage.open" });
  const trimmed = base.replace(/[/\\]/g, ":").replace(/^:+|:+$/g, "");
  return trimmed === "" ? "" : `${trimmed}:`;
}

function checkTtl(name: string, ttl: unknown): void {
  if (typeof ttl !== "number" || !Number.isFinite(ttl) || ttl <= 0) {
    throw new InvalidArgumentError(`${name} must be a positive number of seconds, got ${String(ttl)}`, {
      op: "unstorage",
    });
  }
}

/** The entry's envelope; an entry the driver did not write (plain text) reads as a string without mtime. */
function open(entry: StateEntry | null): Envelope | null {
  if (entry === null) return null;
  if (entry.value.startsWith('{"mtime":')) {
    try {
      const parsed: unknown = JSON.parse(entry.value);
      if (isEnvelope(parsed)) return parsed;
    } catch {
      // Not JSON after all.
    }
    // Plain text that happens to look like an envelope.
  }
  return { mtime: Number.NaN, value: entry.value };
}

/** Exactly what `write` produces: `{ mtime, value }` or `{ mtime, raw }`. */
function isEnvelope(value: unknown): value is Envelope {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const fields = Object.keys(value);
  const v = value as Record<string, unknown>;
  return (
    fields.length === 2 && typeof v.mtime === "number" && (typeof v.value === "string" || typeof v.raw === "string")
  );
}

/** A string item as stored; a raw item as unstorage's own `base64:` text form. */
function asString(entry: StateEntry | null): string | null {
  const envelope = open(entry);
  if (envelope === null) return null;
  return envelope.raw === undefined ? (envelope.value ?? null) : `base64:${envelope.raw}`;
}

function bytesOf(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (typeof value === "string") return Buffer.from(value, "utf8");
  throw new InvalidArgumentError(
    `setItemRaw value must be bytes (Uint8Array, ArrayBuffer) or a string, got ${typeof value}`,
    { op: "unstorage.setItemRaw" },
  );
}
