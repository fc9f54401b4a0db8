import { InvalidArgumentError, QuotaExceededError } from "../errors.js";
import type { EntryOperations, KeyValue } from "./entry-operations.js";
import type { StateTransaction } from "./state-transaction.js";
import type { DeleteOptions, SetOptions, StateEntry } from "./versioned-entry.js";

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
