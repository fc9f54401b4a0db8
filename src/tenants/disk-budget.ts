import { stat } from "node:fs/promises";
import { removeLocalDatabase } from "./replica-position.js";

/**
 * Local files of evicted tenants kept as a warm cache, bounded in bytes. The oldest file goes
 * first; a budget of 0 removes every file at eviction.
 */
export class DiskBudget {
  readonly #budget: number;
  readonly #files = new Map<string, number>();
  readonly #removing = new Map<string, Promise<void>>();
  #bytes = 0;

  constructor(budgetBytes: number) {
    this.#budget = budgetBytes;
  }

  /** Bytes held by kept files. */
  get bytes(): number {
    return this.#bytes;
  }

  /** A tenant file was closed: keep it if it fits, then trim the oldest files back under budget. */
  async keep(path: string): Promise<void> {
    this.forget(path);
    if (this.#budget <= 0) {
      await this.#remove(path);
      return;
    }
    const size = (await stat(path)).size;
    this.#files.set(path, size);
    this.#bytes += size;
    while (this.#bytes > this.#budget) {
      const [oldest, bytes] = this.#files.entries().next().value as [string, number];
      this.#files.delete(oldest);
      this.#bytes -= bytes;
      await this.#remove(oldest);
    }
  }

  /**
   * Claims a file for loading: it is no longer a removal candidate, and a removal already
   * under way finishes before this resolves, so a load never adopts a half-removed file.
   */
  async claim(path: string): Promise<void> {
    this.forget(path);
    await this.#removing.get(path);
  }

  /** The file is in use again (or gone): stop accounting for it. */
  forget(path: string): void {
    const size = this.#files.get(path);
    if (size === undefined) return;
    this.#files.delete(path);
    this.#bytes -= size;
  }

  #remove(path: string): Promise<void> {
    const removal = removeLocalDatabase(path).finally(() => {
      if (this.#removing.get(path) === removal) this.#removing.delete(path);
    });
    this.#removing.set(path, removal);
    return removal;
  }
}
