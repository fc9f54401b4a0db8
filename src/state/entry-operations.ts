import type { Clock } from "../clock.js";
import { InvalidArgumentError, NotFoundError } from "../errors.js";
import { LruMap } from "../internal/lru-map.js";
import { type Executor, likePrefix } from "../sql/index.js";
import { executeTemplate, type ParsedTemplate, parseTemplate } from "./render-template.js";
import { fieldsOf, splitValue } from "./split-value.js";
import type { StateEvent } from "./state-event.js";

/** One entry of a group, as returned by {@link EntryOperations.getPage} and {@link EntryOperations.all}. */
export interface KeyValue {
  readonly key: string;
  readonly value: string;
}

interface EntryRow {
  entry_value: string;
  expires_at: number | null;
}

const LIVE = "(expires_at IS NULL OR expires_at > $NOW)";
const SELECT_ENTRY = "SELECT entry_value, expires_at FROM entries WHERE group_name = $1 AND entry_key = $2";
const UPSERT =
  "INSERT INTO entries (group_name, entry_key, entry_value, expires_at) VALUES ($1, $2, $3, $4) " +
  "ON CONFLICT (group_name, entry_key) DO UPDATE SET entry_value = excluded.entry_value, expires_at = excluded.expires_at";
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

  protected constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Whole milliseconds: BIGINT parameters must be integers, and for integer expiries `e > now` equals `e > floor(now)`. */
  #now(): number {
    return Math.floor(this.#clock.now());
  }

  /** The executor to run on; throws {@link ClosedError} / {@link TransactionError} when unusable. */
  protected abstract executor(op: string): Executor;
  /** Whether anyone listens for events (none are built otherwise). */
  protected abstract listening(): boolean;
  /** Publishes (store) or buffers (transaction) one event. */
  protected abstract emit(event: StateEvent): void;

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
    const ex = this.executor("state.get");
    checkText(ex, "state.get", group, key);
    const row = await ex.get<EntryRow>(SELECT_ENTRY, [group, key]);
    if (row !== undefined) {
      const now = this.#now();
      if (row.expires_at === null || row.expires_at > now) return row.entry_value;
      const { changes } = await ex.run(DELETE_EXPIRED_ENTRY, [group, key, now]);
      if (changes > 0 && this.listening()) this.emit({ type: "delete", group, key, timestamp: now });
    }
    throw new NotFoundError(`${group}/${key}`, { op: "state.get" });
  }

  /** Upserts `value` with no expiry (clearing any TTL) and emits `set`. */
  async set(group: string, key: string, value: string): Promise<void> {
    const ex = this.executor("state.set");
    checkText(ex, "state.set", group, key, value);
    await ex.run(UPSERT, [group, key, value, null]);
    if (this.listening()) this.emit({ type: "set", group, key, value, timestamp: this.#now() });
  }

  /** Upserts `value` expiring `ttlMs` (a positive number of ms) from now on the store's clock, and emits `set`. */
  async setWithTtl(group: string, key: string, value: string, ttlMs: number): Promise<void> {
    const ex = this.executor("state.setWithTtl");
    checkText(ex, "state.setWithTtl", group, key, value);
    checkTtl(ttlMs);
    const now = this.#now();
    await ex.run(UPSERT, [group, key, value, now + Math.ceil(ttlMs)]);
    if (this.listening()) this.emit({ type: "set", group, key, value, timestamp: now });
  }

  /** Removes the entry; emits `delete` only when a row was removed. Deleting an absent key is not an error. */
  async delete(group: string, key: string): Promise<void> {
    const ex = this.executor("state.delete");
    checkText(ex, "state.delete", group, key);
    const { changes } = await ex.run(DELETE_ENTRY, [group, key]);
    if (changes > 0 && this.listening()) this.emit({ type: "delete", group, key, timestamp: this.#now() });
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

  /** Number of live entries in the group. */
  async count(group: string): Promise<number> {
    const ex = this.executor("state.count");
    checkText(ex, "state.count", group);
    const sql = `SELECT COUNT(*) AS n FROM entries WHERE group_name = $1 AND ${live(2)}`;
    return Number((await ex.get<{ n: number }>(sql, [group, this.#now()]))?.n ?? 0);
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
    const ex = this.executor("state.deleteGroup");
    checkText(ex, "state.deleteGroup", group);
    const { changes } = await ex.run("DELETE FROM entries WHERE group_name = $1", [group]);
    if (changes > 0 && this.listening()) {
      this.emit({ type: "delete_group", group, key: "", timestamp: this.#now() });
    }
    return changes;
  }

  /**
   * Removes every group whose name starts with `groupPrefix` (literally; `""` = every group) in
   * one statement, so it is atomic; emits one `delete_group` per removed group. Returns rows removed.
   */
  async deletePrefix(groupPrefix = ""): Promise<number> {
    const ex = this.executor("state.deletePrefix");
    checkText(ex, "state.deletePrefix", groupPrefix);
    const sql = "DELETE FROM entries WHERE group_name LIKE $1 ESCAPE '\\'";
    if (!this.listening()) return (await ex.run(sql, [likePrefix(groupPrefix)])).changes;
    const rows = await ex.all<{ group_name: string }>(`${sql} RETURNING group_name`, [likePrefix(groupPrefix)]);
    const now = this.#now();
    for (const group of [...new Set(rows.map((r) => r.group_name))].sort(byCodePoint)) {
      this.emit({ type: "delete_group", group, key: "", timestamp: now });
    }
    return rows.length;
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
    const ex = this.executor("state.purgeExpired");
    checkText(ex, "state.purgeExpired", groupPrefix);
    const now = this.#now();
    const filter = groupPrefix === "" ? "" : " AND group_name LIKE $2 ESCAPE '\\'";
    const sql = `DELETE FROM entries WHERE expires_at IS NOT NULL AND expires_at <= $1${filter}`;
    const params = groupPrefix === "" ? [now] : [now, likePrefix(groupPrefix)];
    if (!this.listening()) return (await ex.run(sql, params)).changes;
    const rows = await ex.all<{ group_name: string; entry_key: string }>(
      `${sql} RETURNING group_name, entry_key`,
      params,
    );
    for (const r of rows) this.emit({ type: "delete", group: r.group_name, key: r.entry_key, timestamp: now });
    return rows.length;
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

function checkTtl(ttlMs: number): void {
  if (typeof ttlMs !== "number" || !Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw invalid("state.setWithTtl", `ttl must be a positive number of milliseconds, got ${String(ttlMs)}`);
  }
}

/** Rejects non-strings, and strings with U+0000 where the engine's TEXT cannot hold them (PostgreSQL). */
function checkText(ex: Executor, op: string, ...values: string[]): void {
  for (const v of values) {
    if (typeof v !== "string") throw invalid(op, `expected a string, got ${typeof v}`);
    if (!ex.dialect.textAllowsNul && v.includes("\u0000")) {
      throw invalid(op, "PostgreSQL text cannot hold U+0000; group, key and value must not contain it");
    }
  }
}
