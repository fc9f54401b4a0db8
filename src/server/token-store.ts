import { timingSafeEqual } from "node:crypto";
import { type FSWatcher, watch } from "node:fs";
import { mkdir, open, readFile, rename, unlink } from "node:fs/promises";
import { basename, dirname } from "node:path";
import type { Clock } from "../clock.js";
import { systemClock } from "../clock.js";
import { InvalidArgumentError, NotFoundError } from "../errors.js";
import { booleanOption, clockOption, functionOption } from "../internal/option-checks.js";
import { withFileLock } from "./file-lock.js";
import { Role } from "./identity.js";
import { serverWarning } from "./server-warning.js";
import {
  newStoredToken,
  newToken,
  parseTokenFile,
  publicRecord,
  type StoredToken,
  serializeTokenFile,
  type TokenRecord,
  tokenDigest,
  tokenIdOf,
} from "./token-file.js";

/** Options of {@link TokenStore.open}. */
export interface TokenStoreOptions {
  /** The tokens file, e.g. `./.storeroom/tokens.json`. Its directory is created when missing. */
  path: string;
  /** Time source for `createdAt` and expiry. Default the system clock. */
  clock?: Clock;
  /**
   * When the file does not exist, create it with one `operator` token for org `default` and
   * report it as {@link TokenStore.generated}. Default false (an absent file is an empty store).
   */
  bootstrap?: boolean;
  /** Reload the file whenever it changes on disk (another process ran `storeroom tokens`). Default false. */
  watch?: boolean;
  /** Receives a reload that failed (the previous tokens stay in force). Default: a process warning (credentials redacted). */
  onReloadError?: (err: unknown) => void;
  /**
   * Called after {@link TokenStore.add} and {@link TokenStore.revoke} wrote the file, before
   * they resolve (a server on a shared control database hands the change to the other nodes
   * here); its error is the call's error, the file keeps the change. Default none.
   */
  afterWrite?: () => Promise<void>;
}

/** What {@link TokenStore.add} creates a token for. */
export interface NewTokenOptions {
  orgId: string;
  userId?: string;
  roles?: readonly string[];
  /** When the token stops working. Default never. */
  expiresAt?: Date;
  /** Or: how long from now (by the store's clock) the token works. Not together with `expiresAt`. */
  expiresInMs?: number;
  /** Free text shown in listings. */
  label?: string;
}

/** A token made by {@link TokenStore.add} or generated on first start: the only time its secret is known. */
export interface NewToken {
  /** The bearer token; store it now, it cannot be shown again. */
  readonly token: string;
  readonly record: TokenRecord;
}

/** The first-start token, and whether an earlier start generated it without ever showing it. */
export interface GeneratedToken extends NewToken {
  /** True when a previous start generated it and did not confirm showing it (it failed before printing). */
  readonly fromEarlierStart: boolean;
}

/**
 * Bearer tokens kept hashed at rest in a JSON file (SHA-256 per token, mode 0600). Tokens made
 * here embed their id, so a lookup finds the entry by id and compares digests in constant time;
 * older tokens are looked up by digest. Changes made through {@link add} / {@link revoke} are
 * serialised across processes by a lock file and written atomically (temp file + rename);
 * with `watch` a running server picks up changes other processes make without a restart.
 *
 * A file holding clear-text tokens (the older format) is rewritten hashed when opened.
 *
 * @example
 * ```ts
 * const store = await TokenStore.open({ path: "./.storeroom/tokens.json" });
 * const { token, record } = await store.add({ orgId: "acme", roles: ["admin"] });
 * store.identify(token); // the record (with its digest), or undefined
 * await store.revoke(record.id);
 * ```
 */
export class TokenStore {
  readonly path: string;
  readonly #generated: GeneratedToken | undefined;
  /** Clear-text entries hashed by this open (the file was rewritten without them). */
  readonly migrated: number;
  readonly #clock: Clock;
  readonly #onReloadError: (err: unknown) => void;
  readonly #afterWrite: (() => Promise<void>) | undefined;
  #byId = new Map<string, StoredToken>();
  #byDigest = new Map<string, StoredToken>();
  #watcher: FSWatcher | undefined;
  #reloading: Promise<void> | undefined;
  #reloadAgain = false;
  /** Bumped by every write through this store, so a reload that read the file before it does not apply stale tokens. */
  #writes = 0;

  private constructor(
    path: string,
    tokens: readonly StoredToken[],
    info: { generated: GeneratedToken | undefined; migrated: number },
    options: TokenStoreOptions,
  ) {
    this.path = path;
    this.#generated = info.generated;
    this.migrated = info.migrated;
    this.#clock = options.clock ?? systemClock; // checked by open
    this.#onReloadError = options.onReloadError ?? ((err) => serverWarning("tokens", err));
    this.#afterWrite = options.afterWrite;
    this.#apply(tokens);
  }

  /**
   * Loads the file (creating it with a first token when `bootstrap` is set and it is missing),
   * hashing any clear-text entries. A malformed file, an unknown field or a duplicate token or
   * id -> InvalidArgumentError naming the line; nothing starts on a file that is not exactly right.
   */
  static async open(options: TokenStoreOptions): Promise<TokenStore> {
    if (typeof options?.path !== "string" || options.path === "") {
      throw new InvalidArgumentError("path must name the tokens file", { op: "server.tokens" });
    }
    const { path } = options;
    const op = "server.tokens";
    const clock = clockOption<Clock>(options.clock, op, systemClock);
    const bootstrapFile = booleanOption(options.bootstrap, "bootstrap", op, false);
    const watchFile = booleanOption(options.watch, "watch", op, false);
    functionOption(options.onReloadError, "onReloadError", op);
    functionOption(options.afterWrite, "afterWrite", op);
    await mkdir(dirname(path), { recursive: true });
    let generated: GeneratedToken | undefined;
    let loaded = await readTokens(path, clock.now());
    if (loaded === undefined && bootstrapFile) {
      generated = await bootstrap(path, clock.now());
      loaded = await readTokens(path, clock.now());
    }
    let migrated = 0;
    if (loaded !== undefined && loaded.migrated > 0) {
      migrated = await withFileLock(path, async () => {
        const fresh = await readTokens(path, clock.now());
        if (fresh === undefined || fresh.migrated === 0) return 0;
        await writeTokens(path, fresh.tokens);
        loaded = fresh;
        return fresh.migrated;
      });
    }
    const tokens = loaded?.tokens ?? [];
    generated ??= await earlierGenerated(path, tokens);
    const store = new TokenStore(path, tokens, { generated, migrated }, options);
    if (watchFile) store.#watch();
    return store;
  }

  /**
   * The first-start token, when this open generated one or found one an earlier start never
   * showed, for as long as it works (a server joining a cluster may have had it replaced by
   * the tokens the cluster shares).
   */
  get generated(): GeneratedToken | undefined {
    const generated = this.#generated;
    return generated !== undefined && this.identify(generated.token) !== undefined ? generated : undefined;
  }

  /**
   * The entry for a presented bearer token, or `undefined` when it is unknown or expired.
   * Never compares the secret itself: digests only, in constant time where the id is known.
   */
  identify(token: string): StoredToken | undefined {
    const digest = tokenDigest(token);
    const id = tokenIdOf(token);
    let found: StoredToken | undefined;
    if (id !== undefined) {
      const candidate = this.#byId.get(id);
      if (
        candidate !== undefined &&
        timingSafeEqual(Buffer.from(candidate.sha256, "hex"), Buffer.from(digest, "hex"))
      ) {
        found = candidate;
      }
    } else {
      found = this.#byDigest.get(digest);
    }
    if (found === undefined || this.#expired(found)) return undefined;
    return found;
  }

  /** The tokens (never their secrets or digests), of one org or of all, in file order. */
  list(filter: { orgId?: string | undefined } = {}): TokenRecord[] {
    const out: TokenRecord[] = [];
    for (const t of this.#byId.values())
      if (filter.orgId === undefined || t.orgId === filter.orgId) out.push(publicRecord(t));
    return out;
  }

  /** One token's record, or `undefined`. */
  get(id: string): TokenRecord | undefined {
    const found = this.#byId.get(id);
    return found === undefined ? undefined : publicRecord(found);
  }

  /**
   * Creates a token and stores its digest. Invalid org, user or roles -> InvalidKeyError /
   * InvalidArgumentError (nothing written); an expiry in the past -> InvalidArgumentError.
   */
  async add(options: NewTokenOptions): Promise<NewToken> {
    const { token, stored } = prepareNewToken(options, this.#clock.now());
    await this.#mutate((tokens) => [...tokens, stored]);
    await this.#afterWrite?.();
    return { token, record: publicRecord(stored) };
  }

  /**
   * Checks what {@link TokenStore.add} would be given, by the same rules and with the same
   * errors, without a store: `storeroom tokens add` refuses bad input before it opens (and so
   * creates) the tokens file's directory. `now` (default the system clock) dates `expiresInMs`.
   */
  static checkNewToken(options: NewTokenOptions, now: number = systemClock.now()): void {
    prepareNewToken(options, now);
  }

  /** Removes a token; it answers 401 from now on. Unknown id -> NotFoundError. Returns the removed record. */
  async revoke(id: string): Promise<TokenRecord> {
    let removed: StoredToken | undefined;
    await this.#mutate((tokens) => {
      removed = tokens.find((t) => t.id === id);
      if (removed === undefined) throw new NotFoundError(`no token with id ${id}`, { op: "server.tokens" });
      return tokens.filter((t) => t !== removed);
    });
    await this.#afterWrite?.();
    return publicRecord(removed as StoredToken);
  }

  /**
   * Read-modify-write of the file under its lock with an asynchronous step: `exchange` gets
   * the file's current tokens and returns the tokens to write instead, or `undefined` to leave
   * the file as it is. The tokens written are in force when it resolves.
   */
  async exchange(
    exchange: (current: readonly StoredToken[]) => Promise<readonly StoredToken[] | undefined>,
  ): Promise<void> {
    await withFileLock(this.path, async () => {
      const current = (await readTokens(this.path, this.#clock.now()))?.tokens ?? [];
      const next = await exchange(current);
      if (next === undefined) return;
      await writeTokens(this.path, next);
      this.#writes++;
      this.#apply(next);
    });
  }

  /** Re-reads the file now. A bad file rejects and leaves the tokens in force unchanged. */
  async reload(): Promise<void> {
    const writes = this.#writes;
    const loaded = await readTokens(this.path, this.#clock.now());
    if (loaded !== undefined && loaded.migrated > 0) {
      await this.#mutate((tokens) => tokens);
      return;
    }
    if (writes === this.#writes) this.#apply(loaded?.tokens ?? []);
  }

  /**
   * Forgets the first-start token's clear text kept beside the file (`<path>.first-token`)
   * once it was shown; until then every start reports it again as {@link generated}.
   */
  async acknowledgeGenerated(): Promise<void> {
    await unlink(firstTokenPath(this.path)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "ENOENT") throw err;
    });
  }

  /** Stops watching the file. Idempotent. */
  close(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
  }

  /** Read-modify-write under the lock, always from the file's current content. */
  async #mutate(change: (tokens: readonly StoredToken[]) => readonly StoredToken[]): Promise<void> {
    await withFileLock(this.path, async () => {
      const current = (await readTokens(this.path, this.#clock.now()))?.tokens ?? [];
      const next = change(current);
      await writeTokens(this.path, next);
      this.#writes++;
      this.#apply(next);
    });
  }

  #apply(tokens: readonly StoredToken[]): void {
    this.#byId = new Map(tokens.map((t) => [t.id, t]));
    this.#byDigest = new Map(tokens.map((t) => [t.sha256, t]));
  }

  #expired(t: StoredToken): boolean {
    return t.expiresAt !== undefined && Date.parse(t.expiresAt) <= this.#clock.now();
  }

  #watch(): void {
    const name = basename(this.path);
    // The directory, not the file: writes replace the file by rename, which a file watch would lose.
    this.#watcher = watch(dirname(this.path), (_event, filename) => {
      if (filename === null || filename === name) this.#scheduleReload();
    });
    this.#watcher.on("error", this.#onReloadError);
    this.#watcher.unref();
  }

  #scheduleReload(): void {
    if (this.#reloading !== undefined) {
      this.#reloadAgain = true;
      return;
    }
    this.#reloading = this.reload()
      .catch(this.#onReloadError)
      .finally(() => {
        this.#reloading = undefined;
        if (this.#reloadAgain) {
          this.#reloadAgain = false;
          this.#scheduleReload();
        }
      });
  }
}

/** The tokens of the file, or `undefined` when it does not exist. */
async function readTokens(path: string, now: number): Promise<ReturnType<typeof parseTokenFile> | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  return parseTokenFile(text, path, now);
}

async function writeTokens(path: string, tokens: readonly StoredToken[]): Promise<void> {
  await writeFileAtomic(path, serializeTokenFile(tokens));
}

/** Writes a sibling temp file (0600), syncs it, renames it over `path` and syncs the directory. */
async function writeFileAtomic(path: string, text: string): Promise<void> {
  const temp = `${path}.${process.pid}.tmp`;
  const handle = await open(temp, "w", 0o600);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, path);
  const dir = await open(dirname(path), "r");
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

function firstTokenPath(path: string): string {
  return `${path}.first-token`;
}

/**
 * First start: one operator token for org `default`. Its clear text is kept in
 * `<path>.first-token` (0600) until the server confirms it was shown, so a start that fails
 * before printing does not lose the only way in.
 */
async function bootstrap(path: string, now: number): Promise<GeneratedToken | undefined> {
  return withFileLock(path, async () => {
    // Another process created the file first: its first token (if any) is the one to report.
    if ((await readTokens(path, now)) !== undefined) return undefined;
    return writeFirstToken(path, now);
  });
}

async function writeFirstToken(path: string, now: number): Promise<GeneratedToken> {
  const { token, id } = newToken();
  const stored: StoredToken = Object.freeze({
    id,
    sha256: tokenDigest(token),
    orgId: "default",
    roles: Object.freeze([Role.operator]),
    createdAt: new Date(now).toISOString(),
  });
  await writeFileAtomic(firstTokenPath(path), `${token}\n`);
  await writeFileAtomic(path, serializeTokenFile([stored]));
  return { token, record: publicRecord(stored), fromEarlierStart: false };
}

async function earlierGenerated(path: string, tokens: readonly StoredToken[]): Promise<GeneratedToken | undefined> {
  let token: string;
  try {
    token = (await readFile(firstTokenPath(path), "utf8")).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  const digest = tokenDigest(token);
  const stored = tokens.find((t) => t.sha256 === digest);
  // A first token revoked meanwhile is not worth showing.
  return stored === undefined ? undefined : { token, record: publicRecord(stored), fromEarlierStart: true };
}

/** A new token and its stored entry, validated by the rules the file's parser applies (so a token that could not be loaded is never written). */
function prepareNewToken(options: NewTokenOptions, now: number): { token: string; stored: StoredToken } {
  if (options.expiresAt !== undefined && options.expiresInMs !== undefined) {
    throw new InvalidArgumentError("expiresAt and expiresInMs exclude each other", { op: "server.tokens" });
  }
  if (options.expiresInMs !== undefined && !(Number.isInteger(options.expiresInMs) && options.expiresInMs > 0)) {
    throw new InvalidArgumentError("expiresInMs must be a positive integer", { op: "server.tokens" });
  }
  const expiresAt = options.expiresInMs === undefined ? options.expiresAt : new Date(now + options.expiresInMs);
  if (expiresAt !== undefined && !(expiresAt.getTime() > now)) {
    throw new InvalidArgumentError("expiresAt must be in the future", { op: "server.tokens" });
  }
  const { token, id } = newToken();
  const entry = {
    id,
    sha256: tokenDigest(token),
    orgId: options.orgId,
    ...(options.userId === undefined ? {} : { userId: options.userId }),
    roles: [...(options.roles ?? [])],
    createdAt: new Date(now).toISOString(),
    ...(expiresAt === undefined ? {} : { expiresAt: expiresAt.toISOString() }),
    ...(options.label === undefined ? {} : { label: options.label }),
  };
  return { token, stored: newStoredToken(entry, now) };
}
