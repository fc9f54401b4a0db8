import { BackgroundJob } from "../background-job.js";
import type { Clock } from "../clock.js";
import type { SharedSettings } from "./shared-settings.js";
import { parseTokenFile, type StoredToken, serializeTokenFile } from "./token-file.js";
import type { TokenStore } from "./token-store.js";

/** The shared setting holding the tokens file every node of a cluster serves (digests only, as on disk). */
export const TOKENS_SETTING = "tokens";

/** How often a node looks for token changes made through other nodes (or by `storeroom tokens` on its own file), ms. */
const SYNC_INTERVAL_MS = 1_000;

/**
 * Keeps a node's tokens file and the copy every node on the control database shares in
 * step, so a token added or revoked through any node (its HTTP routes, or `storeroom tokens`
 * run against its data directory) works or stops working on all of them: at once for the
 * node's own routes, within a second otherwise. Changes merge by token id against the copy
 * both sides last agreed on: a token added on one side is added, a token removed on one side
 * is removed. When a node starts, the shared copy replaces its file (a token revoked while the
 * node was down never comes back); the first node of a cluster brings its file in.
 */
export class SharedTokens {
  readonly #settings: SharedSettings;
  readonly #clock: Clock;
  readonly #job: BackgroundJob<void>;
  #store: TokenStore | undefined;
  /** The shared copy as of the last exchange, and its version. */
  #base = "";
  #version = -1;

  constructor(options: { settings: SharedSettings; clock: Clock; onError: (err: unknown) => void }) {
    this.#settings = options.settings;
    this.#clock = options.clock;
    this.#job = new BackgroundJob({
      name: "shared tokens",
      intervalMs: SYNC_INTERVAL_MS,
      run: () => this.sync(),
      clock: options.clock,
      onError: options.onError,
    });
  }

  /** Whether the cluster already shares tokens (then a starting node needs no first-start token of its own). */
  async exists(): Promise<boolean> {
    return (await this.#settings.version(TOKENS_SETTING)) > 0;
  }

  /** Joins `store` to the shared copy (see the class) and starts looking for changes. */
  async attach(store: TokenStore): Promise<void> {
    this.#store = store;
    await store.exchange(async (local) => {
      const text = serializeTokenFile(local);
      const shared = await this.#settings.createIfAbsent(TOKENS_SETTING, text);
      this.#base = shared.value;
      this.#version = shared.version;
      return shared.value === text ? undefined : this.#parse(shared.value);
    });
    this.#job.start();
  }

  /** Merges this node's file and the shared copy now (a no-op when neither changed). */
  async sync(): Promise<void> {
    const store = this.#store;
    if (store === undefined) return;
    const version = await this.#settings.version(TOKENS_SETTING);
    await store.exchange(async (local) => {
      const localText = serializeTokenFile(local);
      if (version === this.#version && localText === this.#base) return undefined;
      const base = ids(this.#parse(this.#base));
      const localIds = ids(local);
      const updated = await this.#settings.update(TOKENS_SETTING, (current) => {
        const shared = current === undefined ? [] : this.#parse(current);
        const merged = [
          ...shared.filter((t) => !(base.has(t.id) && !localIds.has(t.id))),
          ...local.filter((t) => !base.has(t.id) && !shared.some((s) => s.id === t.id)),
        ];
        const text = serializeTokenFile(merged);
        return text === current ? undefined : text;
      });
      const merged = updated?.value ?? serializeTokenFile([]);
      this.#base = merged;
      this.#version = updated?.version ?? 0;
      return merged === localText ? undefined : this.#parse(merged);
    });
  }

  /** Stops looking for changes. */
  async close(): Promise<void> {
    await this.#job.stop();
  }

  #parse(text: string): readonly StoredToken[] {
    return parseTokenFile(text, `shared setting ${TOKENS_SETTING}`, this.#clock.now()).tokens;
  }
}

function ids(tokens: readonly StoredToken[]): Set<string> {
  return new Set(tokens.map((t) => t.id));
}
