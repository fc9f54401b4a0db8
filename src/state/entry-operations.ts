import type { Clock } from "../clock.js";
import { InvalidArgumentError, NotFoundError, VersionConflictError, type VersionMismatch } from "../errors.js";
import { LruMap } from "../internal/lru-map.js";
import { type Executor, likePrefix } from "../sql/index.js";
import { type ChangeDraft, type ChangeLog, currentVersion } from "./change-log.js";
import { executeTemplate, type ParsedTemplate, parseTemplate } from "./render-template.js";
import { fieldsOf, splitValue } from "./split-value.js";
import type { StateEvent } from "./state-event.js";
import type {
  BatchOperation,
  BatchOptions,
  BatchResult,
  DeleteOptions,
  GetEntriesOptions,
  SetOptions,
  StateEntry,
  VersionCheck,
} from "./versioned-entry.js";

/** One entry of a group, as returned by {@link EntryOperations.getPage} and {@link EntryOperations.all}. */
export interface KeyValue {
  readonly key: string;
  readonly value: string;
}

interface EntryRow {
  entry_key: string;
  entry_value: string;
  expires_at: number | string | null;
  entry_version: number | string;
}

const LIVE = "(expires_at IS NULL OR expires_at > $NOW)";
const ENTRY_COLUMNS = "entry_key, entry_value, expires_at, entry_version";
const SELECT_ENTRY = `SELECT ${ENTRY_COLUMNS} FROM entries WHERE group_name = $1 AND entry_key = $2`;
const UPSERT =
  "INSERT INTO entries (group_name, entry_key, entry_value, expires_at, entry_version) VALUES ($1, $2, $3, $4, $5) " +
  "ON CONFLICT (group_name, entry_key) DO UPDATE SET entry_value = excluded.entry_value, " +
  "expires_at = excluded.expires_at, entry_version = excluded.entry_version";
const DEFAULT_ENTRIES_LIMIT = 100;
const DELETE_ENTRY = "DELETE FROM entries WHERE group_name = $1 AND entry_key = $2";
const DELETE_EXPIRED_ENTRY = `${DELETE_ENTRY} AND expires_at IS NOT NULL AND expires_at <= $3`;
const templates = new LruMap<string, ParsedTemplate>(256);

/**
 * The read/write API of the state store, written once over an {@link Executor}. {@link StateStore}
 * runs it on its database and dispatches events at once; {@link StateTransaction} runs it on a
 * transaction and buffers events until commit.
 *
 * Values are strings. Expired entries are invisible to every read before any purge.
 */
export abstract class EntryOperations {
  readonly #clock: Clock;
  readonly #log: ChangeLog;

  protected constructor(clock: Clock, log: ChangeLog) {
    this.#clock = clock;
    this.#log = log;
  }

  /** Whole milliseconds: BIGINT parameters must be integers, and for integer expiries `e > now` equals `e > floor(now)`. */
  #now(): number {
    return Math.floor(this.#clock.now());
  }

  /** The executor to run on; throws {@link ClosedError} / {@link TransactionError} when unusable. */
  protected abstract executor(op: string): Executor;
  /**
   * Runs `fn` atomically: in a new transaction on a store, directly on the transaction's
   * executor inside {@link StateStore.transaction}, or there in a savepoint with `savepoint`, so
   * that a failure undoes all of `fn` even when the caller catches it and commits.
   */
  protected abstract atomically<T>(op: string, fn: (ex: Executor) => Promise<T>, savepoint?: boolean): Promise<T>;
  /**
   * Delivers (store) or buffers until commit (transaction) committed changes, in version order;
   * a returned promise settles once they were delivered.
   */
  protected abstract publish(events: readonly StateEvent[]): Promise<void> | undefined;

  /**
   * Returns the live value. Throws {@link NotFoundError} (message `"group/key"`) when absent or
   * expired; an expired row is deleted on the way, emitting a `delete` event.
   *
   * @example
   * ```ts
   * const colour = await state.get("config", "colour");
   * ```
   */
  async get(group: string, key: string): Promise<string> {
    const entry = await this.#readEntry("state.get", group, key);
    if (entry === null) throw new NotFoundError(`${group}/${key}`, { op: "state.get" });
    return entry.value;
  }

  /**
   * The live entry with its version and expiry, or `null` when absent or expired (an expired
   * row is deleted on the way, emitting a `delete` event).
   *
   * @example
   * ```ts
   * const entry = await state.getEntry("counters", "hits");
   * const next = String(Number(entry?.value ?? "0") + 1);
   * await state.set("counters", "hits", next, { ifVersion: entry?.version ?? null });
   * ```
   */
  async getEntry(group: string, key: string): Promise<StateEntry | null> {
    return this.#readEntry("state.getEntry", group, key);
  }

  async #readEntry(op: string, group: string, key: string): Promise<StateEntry | null> {
    const ex = this.executor(op);
    checkText(ex, op, group, key);
    const row = await ex.get<EntryRow>(SELECT_ENTRY, [group, key]);
    if (row === undefined) return null;
    const now = this.#now();
    if (row.expires_at === null || Number(row.expires_at) > now) return toEntry(group, row);
    const events = await this.atomically(op, async (tx) => {
      const version = await this.#log.begin(tx);
      const { changes } = await tx.run(DELETE_EXPIRED_ENTRY, [group, key, now]);
      return changes > 0 ? this.#log.record(tx, [{ type: "delete", group, key, version }], now) : [];
    });
    await this.publish(events);
    return null;
  }

  /**
   * Upserts `value` and emits `set`; returns the entry's new version. Without `ttlMs` any TTL
   * is cleared. With `ifVersion` the write happens only if the entry is at that version
   * (`null`: only if absent), otherwise {@link VersionConflictError} and nothing is written.
   *
   * @example
   * ```ts
   * const v1 = await state.set("config", "colour", "blue");
   * await state.set("config", "colour", "green", { ifVersion: v1 }); // compare-and-set
   * await state.set("locks", "job", "worker-1", { ifVersion: null, ttlMs: 30_000 }); // create-only
   * ```
   */
  async set(group: string, key: string, value: string, options: SetOptions = {}): Promise<number> {
    return this.#set("state.set", group, key, value, options);
  }

  /** Upserts `value` expiring `ttlMs` (a positive number of ms) from now on the store's clock, and emits `set`; returns the new version. */
  async setWithTtl(group: string, key: string, value: string, ttlMs: number): Promise<number> {
    return this.#set("state.setWithTtl", group, key, value, { ttlMs });
  }

  async #set(op: string, group: string, key: string, value: string, options: SetOptions): Promise<number> {
    const ex = this.executor(op);
    checkText(ex, op, group, key, value);
    const { ifVersion, ttlMs } = options ?? {};
    const now = this.#now();
    const expires = ttlMs === undefined ? null : expiryOf(op, now, ttlMs);
    checkExpectedVersion(op, ifVersion);
    const events = await this.atomically(op, async (tx) => {
      const version = await this.#log.begin(tx);
      if (ifVersion !== undefined) await this.#check(tx, op, [{ group, key, version: ifVersion }], now);
      await tx.run(UPSERT, [group, key, value, expires, version]);
      return this.#log.record(tx, [{ type: "set", group, key, value, version }], now);
    });
    await this.publish(events);
    return (events[0] as StateEvent).version;
  }

  /**
   * Removes the entry and emits `delete`; returns whether a row was removed (deleting an
   * absent key is not an error). With `ifVersion`, removes only an entry at that version
   * (`null`: succeeds only when absent), otherwise {@link VersionConflictError}.
   */
  async delete(group: string, key: string, options: DeleteOptions = {}): Promise<boolean> {
    const op = "state.delete";
    const ex = this.executor(op);
    checkText(ex, op, group, key);
    const ifVersion = options?.ifVersion;
    checkExpectedVersion(op, ifVersion);
    const now = this.#now();
    const events = await this.atomically(op, async (tx) => {
      const version = await this.#log.begin(tx);
      if (ifVersion !== undefined) await this.#check(tx, op, [{ group, key, version: ifVersion }], now);
      const { changes } = await tx.run(DELETE_ENTRY, [group, key]);
      return changes > 0 ? this.#log.record(tx, [{ type: "delete", group, key, version }], now) : [];
    });
    await this.publish(events);
    return events.length > 0;
  }

  /**
   * Applies `operations` atomically, all or nothing, after verifying every check in `checks`
   * (like Deno KV's `atomic().check()`): if any entry is not at the expected version (or not
   * absent for `null`), nothing is written and {@link VersionConflictError} lists every failed
   * check. Each operation gets its own version, in order; events follow the same order.
   * Invalid operations throw {@link InvalidArgumentError} before anything is written.
   *
   * @example
   * ```ts
   * const from = await state.getEntry("accounts", "a");
   * const to = await state.getEntry("accounts", "b");
   * await state.batch(
   *   [
   *     { type: "set", group: "accounts", key: "a", value: String(Number(from!.value) - 10) },
   *     { type: "set", group: "accounts", key: "b", value: String(Number(to!.value) + 10) },
   *   ],
   *   { checks: [{ group: "accounts", key: "a", version: from!.version }, { group: "accounts", key: "b", version: to!.version }] },
   * );
   * ```
   */
  async batch(operations: readonly BatchOperation[], options: BatchOptions = {}): Promise<BatchResult> {
    const op = "state.batch";
    const ex = this.executor(op);
    const checks = options?.checks ?? [];
    if (!Array.isArray(operations)) throw invalid(op, "operations must be an array");
    if (!Array.isArray(checks)) throw invalid(op, "checks must be an array");
    const now = this.#now();
    operations.forEach((o, i) => {
      checkOperation(ex, op, o, i, now);
    });
    checks.forEach((c, i) => {
      if (c === null || typeof c !== "object") throw invalid(op, `checks[${i}] must be an object`);
      checkText(ex, op, c.group, c.key);
      if (c.version !== null && typeof c.version !== "number") {
        throw invalid(op, `checks[${i}].version must be a version number or null, got ${String(c.version)}`);
      }
      checkExpectedVersion(`${op} checks[${i}]`, c.version);
    });
    const versions: (number | null)[] = [];
    const events = await this.atomically(
      op,
      async (tx) => {
        const first = await this.#log.begin(tx);
        if (checks.length > 0) await this.#check(tx, op, checks, now);
        const drafts: ChangeDraft[] = [];
        let next = first;
        for (const o of operations) {
          if (o.type === "set") {
            const expires = o.ttlMs === undefined ? null : expiryOf(op, now, o.ttlMs);
            await tx.run(UPSERT, [o.group, o.key, o.value, expires, next]);
            drafts.push({ type: "set", group: o.group, key: o.key, value: o.value, version: next });
            versions.push(next++);
          } else {
            const { changes } = await tx.run(DELETE_ENTRY, [o.group, o.key]);
            if (changes > 0) drafts.push({ type: "delete", group: o.group, key: o.key, version: next });
            versions.push(changes > 0 ? next++ : null);
          }
        }
        return this.#log.record(tx, drafts, now);
      },
      true,
    );
    await this.publish(events);
    const last = events[events.length - 1];
    return { versions, version: last === undefined ? null : last.version };
  }

  /** The store's version: the highest version any committed change got. */
  async version(): Promise<number> {
    return currentVersion(this.executor("state.version"));
  }

  /** Throws {@link VersionConflictError} listing every check the current entries fail. */
  async #check(tx: Executor, op: string, checks: readonly VersionCheck[], now: number): Promise<void> {
    const mismatches: VersionMismatch[] = [];
    for (const c of checks) {
      const row = await tx.get<EntryRow>(SELECT_ENTRY, [c.group, c.key]);
      const live = row !== undefined && (row.expires_at === null || Number(row.expires_at) > now);
      const actual = live ? Number(row.entry_version) : null;
      if (actual !== c.version) mismatches.push({ group: c.group, key: c.key, expected: c.version, actual });
    }
    if (mismatches.length > 0) throw new VersionConflictError(mismatches, { op });
  }

  /** Whether a live entry exists. */
  async exists(group: string, key: string): Promise<boolean> {
    const ex = this.executor("state.exists");
    checkText(ex, "state.exists", group, key);
    const sql = `SELECT 1 AS one FROM entries WHERE group_name = $1 AND entry_key = $2 AND ${live(3)}`;
    return (await ex.get(sql, [group, key, this.#now()])) !== undefined;
  }

  /** Whether the group has at least one live entry (groups exist only while they have keys). */
  async groupExists(group: string): Promise<boolean> {
    const ex = this.executor("state.groupExists");
    checkText(ex, "state.groupExists", group);
    const sql = `SELECT 1 AS one FROM entries WHERE group_name = $1 AND ${live(2)} LIMIT 1`;
    return (await ex.get(sql, [group, this.#now()])) !== undefined;
  }

  /** Number of live entries in the group, optionally only keys starting with `keyPrefix` (literally). */
  async count(group: string, keyPrefix = ""): Promise<number> {
    const ex = this.executor("state.count");
    checkText(ex, "state.count", group, keyPrefix);
    const byKey = keyPrefix === "" ? "" : " AND entry_key LIKE $3 ESCAPE '\\'";
    const sql = `SELECT COUNT(*) AS n FROM entries WHERE group_name = $1 AND ${live(2)}${byKey}`;
    const params = keyPrefix === "" ? [group, this.#now()] : [group, this.#now(), likePrefix(keyPrefix)];
    return Number((await ex.get<{ n: number }>(sql, params))?.n ?? 0);
  }

  /** Number of live entries across groups whose name starts with `groupPrefix` (literally; `""` = all). */
  async countAll(groupPrefix = ""): Promise<number> {
    const ex = this.executor("state.countAll");
    checkText(ex, "state.countAll", groupPrefix);
    const sql = `SELECT COUNT(*) AS n FROM entries WHERE group_name LIKE $1 ESCAPE '\\' AND ${live(2)}`;
    return Number((await ex.get<{ n: number }>(sql, [likePrefix(groupPrefix), this.#now()]))?.n ?? 0);
  }

  /** Removes every row of the group (live or expired); emits one `delete_group` when rows were removed. Returns rows removed. */
  async deleteGroup(group: string): Promise<number> {
    const op = "state.deleteGroup";
    const ex = this.executor(op);
    checkText(ex, op, group);
    const now = this.#now();
    let removed = 0;
    const events = await this.atomically(op, async (tx) => {
      const version = await this.#log.begin(tx);
      removed = (await tx.run("DELETE FROM entries WHERE group_name = $1", [group])).changes;
      return removed > 0 ? this.#log.record(tx, [{ type: "delete_group", group, key: "", version }], now) : [];
    });
    await this.publish(events);
    return removed;
  }

  /**
   * Removes every group whose name starts with `groupPrefix` (literally; `""` = every group) in
   * one statement, so it is atomic; emits one `delete_group` per removed group. Returns rows removed.
   */
  async deletePrefix(groupPrefix = ""): Promise<number> {
    const op = "state.deletePrefix";
    const ex = this.executor(op);
    checkText(ex, op, groupPrefix);
    const now = this.#now();
    let removed = 0;
    const events = await this.atomically(op, async (tx) => {
      const first = await this.#log.begin(tx);
      const rows = await tx.all<{ group_name: string }>(
        "DELETE FROM entries WHERE group_name LIKE $1 ESCAPE '\\' RETURNING group_name",
        [likePrefix(groupPrefix)],
      );
      removed = rows.length;
      const groups = [...new Set(rows.map((r) => r.group_name))].sort(byCodePoint);
      return this.#log.record(
        tx,
        groups.map((group, i) => ({ type: "delete_group", group, key: "", version: first + i })),
        now,
      );
    });
    await this.publish(events);
    return removed;
  }

  /** Every live entry of the group as a Map iterating in key order (code-point order on every engine). Prefer {@link getPage} or {@link all} for large groups. */
  async getAll(group: string): Promise<Map<string, string>> {
    const ex = this.executor("state.getAll");
    checkText(ex, "state.getAll", group);
    const rows = await ex.all<{ entry_key: string; entry_value: string }>(
      `SELECT entry_key, entry_value FROM entries WHERE group_name = $1 AND ${live(2)} ` +
        `ORDER BY entry_key${ex.dialect.binaryCollation}`,
      [group, this.#now()],
    );
    const map = new Map<string, string>();
    for (const r of rows) map.set(r.entry_key, r.entry_value);
    return map;
  }

  /** Up to `limit` live entries ordered by key, after skipping `offset`. Negative or non-integer bounds throw {@link InvalidArgumentError}. */
  async getPage(group: string, offset: number, limit: number): Promise<KeyValue[]> {
    const ex = this.executor("state.getPage");
    checkText(ex, "state.getPage", group);
    if (!Number.isSafeInteger(offset) || offset < 0) throw invalid("state.getPage", "offset must be zero or positive");
    if (!Number.isSafeInteger(limit) || limit < 0) throw invalid("state.getPage", "limit must be zero or positive");
    const rows = await ex.all<{ entry_key: string; entry_value: string }>(
      `SELECT entry_key, entry_value FROM entries WHERE group_name = $1 AND ${live(2)} ` +
        `ORDER BY entry_key${ex.dialect.binaryCollation} LIMIT $3 OFFSET $4`,
      [group, this.#now(), limit, offset],
    );
    return rows.map((r) => ({ key: r.entry_key, value: r.entry_value }));
  }

  /**
   * A page of the group's live entries with versions and expiries, ordered by key, optionally
   * only keys starting with `keyPrefix`. Bad bounds throw {@link InvalidArgumentError}.
   */
  async getEntries(group: string, options: GetEntriesOptions = {}): Promise<StateEntry[]> {
    const op = "state.getEntries";
    const ex = this.executor(op);
    const { keyPrefix = "", offset = 0, limit = DEFAULT_ENTRIES_LIMIT } = options ?? {};
    checkText(ex, op, group, keyPrefix);
    if (!Number.isSafeInteger(offset) || offset < 0) throw invalid(op, "offset must be zero or positive");
    if (!Number.isSafeInteger(limit) || limit < 0) throw invalid(op, "limit must be zero or positive");
    const rows = await ex.all<EntryRow>(
      `SELECT ${ENTRY_COLUMNS} FROM entries WHERE group_name = $1 AND ${live(2)} AND entry_key LIKE $3 ESCAPE '\\' ` +
        `ORDER BY entry_key${ex.dialect.binaryCollation} LIMIT $4 OFFSET $5`,
      [group, this.#now(), likePrefix(keyPrefix), limit, offset],
    );
    return rows.map((r) => toEntry(group, r));
  }

  /** Streams the group's live entries ordered by key; breaking out of the loop closes the cursor. */
  async *all(group: string): AsyncGenerator<KeyValue> {
    const ex = this.executor("state.all");
    checkText(ex, "state.all", group);
    const rows = ex.iterate<{ entry_key: string; entry_value: string }>(
      `SELECT entry_key, entry_value FROM entries WHERE group_name = $1 AND ${live(2)} ` +
        `ORDER BY entry_key${ex.dialect.binaryCollation}`,
      [group, this.#now()],
    );
    for await (const r of rows) yield { key: r.entry_key, value: r.entry_value };
  }

  /** Distinct group names with live entries, ordered by name, optionally only those starting with `groupPrefix`. */
  async groups(groupPrefix = ""): Promise<string[]> {
    const ex = this.executor("state.groups");
    checkText(ex, "state.groups", groupPrefix);
    const rows = await ex.all<{ group_name: string }>(
      `SELECT group_name FROM entries WHERE group_name LIKE $1 ESCAPE '\\' AND ${live(2)} ` +
        `GROUP BY group_name ORDER BY group_name${ex.dialect.binaryCollation}`,
      [likePrefix(groupPrefix), this.#now()],
    );
    return rows.map((r) => r.group_name);
  }

  /** The value split by `separator` (Go `strings.Split` semantics). Throws {@link NotFoundError} when missing. */
  async getSplit(group: string, key: string, separator: string): Promise<string[]> {
    if (typeof separator !== "string") throw invalid("state.getSplit", "separator must be a string");
    return splitValue(await this.get(group, key), separator);
  }

  /** The value split on runs of Unicode whitespace (Go `strings.Fields`). Throws {@link NotFoundError} when missing. */
  async getFields(group: string, key: string): Promise<string[]> {
    return fieldsOf(await this.get(group, key));
  }

  /**
   * Executes a Go `text/template` with the group's live entries as its data (Go's
   * `map[string]string`: `{{ .key }}`, `{{ range $k, $v := . }}` in key order, `if`, `with`,
   * `printf`, ...; see docs/state.md). A missing key renders `<no value>`. A malformed template
   * throws {@link TemplateError} with Go's message before anything is read; an unsupported Go
   * feature throws {@link UnsupportedError} naming it.
   *
   * @example
   * ```ts
   * await state.render("Hello {{ .name }}!", "user"); // "Hello Ada!"
   * await state.render('{{ range $k, $v := . }}{{ $k }}={{ $v }};{{ end }}', "user"); // "name=Ada;"
   * ```
   */
  async render(template: string, group: string): Promise<string> {
    // A closed store says so before a template is even parsed, as every other method does.
    this.executor("state.render");
    let parsed = templates.get(template);
    if (parsed === undefined) {
      parsed = parseTemplate(template);
      templates.set(template, parsed);
    }
    return executeTemplate(parsed, await this.getAll(group));
  }

  /**
   * Physically deletes expired rows (only in groups starting with `groupPrefix`, when given),
   * emitting a `delete` event for each row actually removed. Returns how many were removed.
   */
  async purgeExpired(groupPrefix = ""): Promise<number> {
    const op = "state.purgeExpired";
    const ex = this.executor(op);
    checkText(ex, op, groupPrefix);
    const now = this.#now();
    const filter = groupPrefix === "" ? "" : " AND group_name LIKE $2 ESCAPE '\\'";
    const where = `expires_at IS NOT NULL AND expires_at <= $1${filter}`;
    const params = groupPrefix === "" ? [now] : [now, likePrefix(groupPrefix)];
    // Most runs find nothing: a read keeps them from taking the write lock.
    if ((await ex.get(`SELECT 1 AS one FROM entries WHERE ${where} LIMIT 1`, params)) === undefined) return 0;
    const events = await this.atomically(op, async (tx) => {
      const first = await this.#log.begin(tx);
      const rows = await tx.all<{ group_name: string; entry_key: string }>(
        `DELETE FROM entries WHERE ${where} RETURNING group_name, entry_key`,
        params,
      );
      return this.#log.record(
        tx,
        rows.map((r, i) => ({ type: "delete", group: r.group_name, key: r.entry_key, version: first + i })),
        now,
      );
    });
    await this.publish(events);
    return events.length;
  }
}

function live(n: number): string {
  return LIVE.replace("$NOW", `$${n}`);
}

function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function invalid(op: string, message: string): InvalidArgumentError {
  return new InvalidArgumentError(message, { op });
}

/**
 * The expiry of an entry written at `now` with `ttlMs`. It must stay a safe integer: PostgreSQL's
 * BIGINT refuses `1e+300`, and SQLite would store an expiry rounded to a neighbouring double.
 */
function expiryOf(op: string, now: number, ttlMs: number): number {
  if (typeof ttlMs !== "number" || !Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw invalid(op, `ttlMs must be a positive number of milliseconds, got ${String(ttlMs)}`);
  }
  const expires = now + Math.ceil(ttlMs);
  if (!Number.isSafeInteger(expires)) {
    throw invalid(
      op,
      `ttlMs must be at most ${Number.MAX_SAFE_INTEGER - now} ms (the expiry must be a safe integer), got ${String(ttlMs)}`,
    );
  }
  return expires;
}

function checkExpectedVersion(op: string, version: unknown): void {
  if (version === undefined || version === null) return;
  if (typeof version !== "number" || !Number.isSafeInteger(version) || version < 0) {
    throw invalid(op, `ifVersion must be a version number or null, got ${String(version)}`);
  }
}

function checkOperation(ex: Executor, op: string, o: BatchOperation, i: number, now: number): void {
  if (o === null || typeof o !== "object") throw invalid(op, `operations[${i}] must be an object`);
  if (o.type === "set") {
    checkText(ex, op, o.group, o.key, o.value);
    if (o.ttlMs !== undefined) expiryOf(op, now, o.ttlMs);
  } else if (o.type === "delete") {
    checkText(ex, op, o.group, o.key);
  } else {
    throw invalid(op, `operations[${i}].type must be "set" or "delete", got ${String((o as { type?: unknown }).type)}`);
  }
}

function toEntry(group: string, row: EntryRow): StateEntry {
  return {
    group,
    key: row.entry_key,
    value: row.entry_value,
    version: Number(row.entry_version),
    expiresAt: row.expires_at === null ? null : Number(row.expires_at),
  };
}

/**
 * Rejects non-strings, strings with a lone surrogate (SQLite would store them as bytes no UTF-8
 * reader gets back, PostgreSQL as U+FFFD, so that two keys would become one), and strings with
 * U+0000 where the engine's TEXT cannot hold them (PostgreSQL).
 */
export function checkText(ex: Executor, op: string, ...values: string[]): void {
  for (const v of values) {
    if (typeof v !== "string") throw invalid(op, `expected a string, got ${typeof v}`);
    if (!v.isWellFormed()) {
      throw invalid(op, "group, key and value must be well-formed Unicode (a lone surrogate cannot be stored)");
    }
    if (!ex.dialect.textAllowsNul && v.includes("\u0000")) {
      throw invalid(op, "PostgreSQL text cannot hold U+0000; group, key and value must not contain it");
    }
  }
}
