import { InvalidArgumentError, QuotaExceededError } from "../errors.js";
import type { EntryOperations, KeyValue } from "./entry-operations.js";
import type { StateTransaction } from "./state-transaction.js";
import type {
  BatchOperation,
  BatchOptions,
  BatchResult,
  DeleteOptions,
  SetOptions,
  StateEntry,
  VersionCheck,
} from "./versioned-entry.js";

/** Limits of a scoped store; `0` (the default) means unlimited. */
export interface ScopeQuota {
  /** Maximum live keys across all groups of the namespace. */
  maxKeys?: number;
  /** Maximum live groups of the namespace. */
  maxGroups?: number;
}

const NAMESPACE = /^[a-zA-Z0-9-]+$/;
/** The group used by the scoped methods that take no group. */
export const DEFAULT_GROUP = "default";

/** Validates a namespace and quota; throws {@link InvalidArgumentError}. */
export function normalizeScope(namespace: string, quota: ScopeQuota = {}): Required<ScopeQuota> {
  if (typeof namespace !== "string" || !NAMESPACE.test(namespace)) {
    throw new InvalidArgumentError(`namespace "${String(namespace)}" must match ^[a-zA-Z0-9-]+$`, {
      op: "state.scoped",
    });
  }
  if (quota === null || typeof quota !== "object") {
    throw new InvalidArgumentError("quota must be an object { maxKeys?, maxGroups? } or absent", {
      op: "state.scoped",
    });
  }
  const maxKeys = quota.maxKeys ?? 0;
  const maxGroups = quota.maxGroups ?? 0;
  for (const [name, v] of [
    ["maxKeys", maxKeys],
    ["maxGroups", maxGroups],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new InvalidArgumentError(`${name} must be zero (unlimited) or a positive integer`, { op: "state.scoped" });
    }
  }
  return { maxKeys, maxGroups };
}

/**
 * Checks the quota for writing (group, key) inside `tx`, after `tx.lockNamespace`. Overwriting a
 * live key never uses quota; expired rows count as absent.
 */
export async function enforceQuota(
  tx: StateTransaction,
  namespace: string,
  quota: Required<ScopeQuota>,
  fullGroup: string,
  key: string,
): Promise<void> {
  await tx.lockNamespace(namespace);
  if (await tx.exists(fullGroup, key)) return;
  const prefix = `${namespace}:`;
  if (quota.maxKeys > 0 && (await tx.countAll(prefix)) >= quota.maxKeys) {
    throw new QuotaExceededError("keys", quota.maxKeys, { op: "state.scoped.set" });
  }
  if (quota.maxGroups > 0 && !(await tx.groupExists(fullGroup))) {
    if ((await tx.groups(prefix)).length >= quota.maxGroups) {
      throw new QuotaExceededError("groups", quota.maxGroups, { op: "state.scoped.set" });
    }
  }
}

/**
 * Checks the quota for a whole batch of (already qualified) operations inside `tx`, after
 * `tx.lockNamespace`, by replaying them over the live keys they touch: the batch is refused when
 * it would leave more live keys (or groups) than allowed and more than before, so overwrites and
 * batches that free as much as they add always pass.
 */
export async function enforceBatchQuota(
  tx: StateTransaction,
  namespace: string,
  quota: Required<ScopeQuota>,
  operations: readonly BatchOperation[],
): Promise<void> {
  await tx.lockNamespace(namespace);
  const live = new Map<string, boolean>();
  const groupKeys = new Map<string, number>();
  let keyDelta = 0;
  for (const o of operations) {
    const before = groupKeys.get(o.group) ?? (await tx.count(o.group));
    const id = `${o.group}\u0000${o.key}`;
    const was = live.get(id) ?? (await tx.exists(o.group, o.key));
    const is = o.type === "set";
    const delta = was === is ? 0 : is ? 1 : -1;
    keyDelta += delta;
    groupKeys.set(o.group, before + delta);
    live.set(id, is);
  }
  const prefix = `${namespace}:`;
  const op = "state.scoped.batch";
  if (quota.maxKeys > 0 && keyDelta > 0 && (await tx.countAll(prefix)) + keyDelta > quota.maxKeys) {
    throw new QuotaExceededError("keys", quota.maxKeys, { op });
  }
  if (quota.maxGroups > 0) {
    const existing = new Set(await tx.groups(prefix));
    let after = existing.size;
    for (const [group, keys] of groupKeys) {
      if (!existing.has(group) && keys > 0) after++;
      if (existing.has(group) && keys === 0) after--;
    }
    if (after > existing.size && after > quota.maxGroups)
      throw new QuotaExceededError("groups", quota.maxGroups, { op });
  }
}

/**
 * The namespaced API shared by {@link ScopedStateStore} and {@link ScopedStateTransaction}.
 * Groups are stored as `namespace:group`; results never include other namespaces and group
 * names come back without the prefix.
 */
export abstract class ScopedOperations {
  /** The namespace (`^[a-zA-Z0-9-]+$`). */
  readonly namespace: string;
  /** The limits (0 = unlimited). */
  readonly quota: Readonly<Required<ScopeQuota>>;
  readonly #prefix: string;

  protected constructor(namespace: string, quota: Required<ScopeQuota>) {
    this.namespace = namespace;
    this.quota = Object.freeze({ ...quota });
    this.#prefix = `${namespace}:`;
  }

  /** What reads and unchecked writes run on. */
  protected abstract target(): EntryOperations;
  /** Runs `fn` in a transaction: a new one on a store, the current one inside a transaction. */
  protected abstract inTransaction<T>(fn: (tx: StateTransaction) => Promise<T>): Promise<T>;
  /** Runs a write after the quota check, both in one transaction. */
  protected abstract checkedWrite<T>(
    group: string,
    key: string,
    write: (ops: EntryOperations) => Promise<T>,
  ): Promise<T>;

  protected get unlimited(): boolean {
    return this.quota.maxKeys === 0 && this.quota.maxGroups === 0;
  }

  /** `namespace:group`. */
  protected qualify(group: string): string {
    if (typeof group !== "string") throw new InvalidArgumentError("group must be a string", { op: "state.scoped" });
    return this.#prefix + group;
  }

  /** Whether `key` exists (live) in the default group. */
  exists(key: string): Promise<boolean> {
    return this.existsIn(DEFAULT_GROUP, key);
  }

  /** Whether `key` exists (live) in `group`. */
  existsIn(group: string, key: string): Promise<boolean> {
    return this.target().exists(this.qualify(group), key);
  }

  /** Whether `group` has live keys. */
  groupExists(group: string): Promise<boolean> {
    return this.target().groupExists(this.qualify(group));
  }

  /** The value of `key` in the default group; {@link NotFoundError} when missing. */
  get(key: string): Promise<string> {
    return this.getFrom(DEFAULT_GROUP, key);
  }

  /** The value of `key` in `group`; {@link NotFoundError} when missing. */
  getFrom(group: string, key: string): Promise<string> {
    return this.target().get(this.qualify(group), key);
  }

  /** The live entry of `key` in `group` with its version and expiry (group without the namespace), or `null`. */
  async getEntryFrom(group: string, key: string): Promise<StateEntry | null> {
    const entry = await this.target().getEntry(this.qualify(group), key);
    return entry === null ? null : { ...entry, group };
  }

  /** Sets `key` in the default group (quota-checked); returns the new version. */
  set(key: string, value: string): Promise<number> {
    return this.setIn(DEFAULT_GROUP, key, value);
  }

  /**
   * Sets `key` in `group` (quota-checked; {@link QuotaExceededError} names the limit); returns
   * the new version. `options` as for {@link EntryOperations.set} (`ifVersion`, `ttlMs`).
   */
  setIn(group: string, key: string, value: string, options: SetOptions = {}): Promise<number> {
    const full = this.qualify(group);
    return this.checkedWrite(full, key, (ops) => ops.set(full, key, value, options));
  }

  /** Sets `key` in `group` with a TTL in ms (quota-checked); returns the new version. */
  setWithTtl(group: string, key: string, value: string, ttlMs: number): Promise<number> {
    const full = this.qualify(group);
    return this.checkedWrite(full, key, (ops) => ops.setWithTtl(full, key, value, ttlMs));
  }

  /**
   * Applies `operations` (groups within the namespace, across as many as you like) atomically,
   * all or nothing, after every check in `checks` passes; see {@link EntryOperations.batch}.
   * The quota applies to the batch as a whole: {@link QuotaExceededError} (nothing written) when
   * it would leave more live keys or groups than allowed and more than before.
   *
   * @example
   * ```ts
   * await tenant.batch([
   *   { type: "set", group: "config", key: "lang", value: "en" },
   *   { type: "delete", group: "drafts", key: "lang" },
   * ]);
   * ```
   */
  async batch(operations: readonly BatchOperation[], options: BatchOptions = {}): Promise<BatchResult> {
    const op = "state.scoped.batch";
    if (!Array.isArray(operations)) throw new InvalidArgumentError("operations must be an array", { op });
    const checks: readonly VersionCheck[] = options?.checks ?? [];
    if (!Array.isArray(checks)) throw new InvalidArgumentError("checks must be an array", { op });
    const qualified = operations.map((o, i) => {
      if (o === null || typeof o !== "object" || (o.type !== "set" && o.type !== "delete")) {
        throw new InvalidArgumentError(`operations[${i}] must be a set or delete operation`, { op });
      }
      return { ...o, group: this.qualify(o.group) };
    });
    const qualifiedChecks = checks.map((c, i) => {
      if (c === null || typeof c !== "object") throw new InvalidArgumentError(`checks[${i}] must be an object`, { op });
      return { ...c, group: this.qualify(c.group) };
    });
    if (this.unlimited) return this.target().batch(qualified, { checks: qualifiedChecks });
    return this.inTransaction(async (tx) => {
      await enforceBatchQuota(tx, this.namespace, this.quota, qualified);
      return tx.batch(qualified, { checks: qualifiedChecks });
    });
  }

  /** Deletes `key` from `group`; returns whether it existed. `options.ifVersion` as for {@link EntryOperations.delete}. */
  delete(group: string, key: string, options: DeleteOptions = {}): Promise<boolean> {
    return this.target().delete(this.qualify(group), key, options);
  }

  /** Deletes the whole group. */
  deleteGroup(group: string): Promise<number> {
    return this.target().deleteGroup(this.qualify(group));
  }

  /** Deletes every group of the namespace starting with `groupPrefix` (`""` = the whole namespace), atomically. */
  deletePrefix(groupPrefix = ""): Promise<number> {
    return this.target().deletePrefix(this.qualify(groupPrefix));
  }

  /** Live entries of `group`. */
  getAll(group: string): Promise<Map<string, string>> {
    return this.target().getAll(this.qualify(group));
  }

  /** A page of `group` ordered by key. */
  getPage(group: string, offset: number, limit: number): Promise<KeyValue[]> {
    return this.target().getPage(this.qualify(group), offset, limit);
  }

  /** Streams `group` ordered by key. */
  all(group: string): AsyncGenerator<KeyValue> {
    return this.target().all(this.qualify(group));
  }

  /** Live keys in `group`. */
  count(group: string): Promise<number> {
    return this.target().count(this.qualify(group));
  }

  /** Live keys across the namespace's groups starting with `groupPrefix`. */
  countAll(groupPrefix = ""): Promise<number> {
    return this.target().countAll(this.qualify(groupPrefix));
  }

  /** The namespace's live group names (without the prefix), optionally filtered by prefix. */
  async groups(groupPrefix = ""): Promise<string[]> {
    const names = await this.target().groups(this.qualify(groupPrefix));
    return names.map((g) => g.slice(this.#prefix.length));
  }

  /** Executes a Go `text/template` over `group` (see {@link EntryOperations.render}). */
  render(template: string, group: string): Promise<string> {
    return this.target().render(template, this.qualify(group));
  }

  /** The value split by `separator`. */
  getSplit(group: string, key: string, separator: string): Promise<string[]> {
    return this.target().getSplit(this.qualify(group), key, separator);
  }

  /** The value split on whitespace. */
  getFields(group: string, key: string): Promise<string[]> {
    return this.target().getFields(this.qualify(group), key);
  }

  /** Purges only this namespace's expired rows. */
  purgeExpired(): Promise<number> {
    return this.target().purgeExpired(this.#prefix);
  }
}
