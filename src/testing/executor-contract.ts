import { InvalidArgumentError } from "../errors.js";
import type { Database } from "../sql/index.js";
import type { ExecutorCase } from "./executor-contract-helpers.js";
import { migrationCases } from "./executor-contract-migrations.js";
import { statementCases } from "./executor-contract-statements.js";
import { transactionCases } from "./executor-contract-transactions.js";

export type { ExecutorCase } from "./executor-contract-helpers.js";

/** Options of {@link runExecutorContract}. */
export interface ExecutorContractOptions {
  /** The runner's `describe` (vitest or `node:test`). Default: a global `describe`. */
  describe?: (name: string, fn: () => void) => unknown;
  /** The runner's `it`, called as `it(name, fn)`; wrap it to pass a timeout. Default: a global `it`. */
  it?: (name: string, fn: () => Promise<void>) => unknown;
  /** Title of the enclosing `describe`. Default `"executor contract"`. */
  name?: string;
}

/** Every case, in order; exported so a harness can assert that none is silently dropped. */
export const executorContractCases: readonly ExecutorCase[] = [
  ...statementCases,
  ...transactionCases,
  ...migrationCases,
];

/**
 * Registers the behaviour every {@link Database} shares (statements, value round trips, typed
 * errors, streaming, transactions and savepoints, read-only transactions, the dialect's
 * capabilities, close, migrations). `openFresh` must resolve to a new, empty database each
 * call; every case closes the database it opened. The cases assert with `node:assert`, so any
 * runner with `describe`/`it` works.
 *
 * @example
 * ```ts
 * import { describe, it } from "vitest";
 * runExecutorContract(() => openSqlite(":memory:"), { describe, it, name: "sqlite" });
 * ```
 */
export function runExecutorContract(openFresh: () => Promise<Database>, options: ExecutorContractOptions = {}): void {
  const globals = globalThis as Partial<Pick<ExecutorContractOptions, "describe" | "it">>;
  const describe = options.describe ?? globals.describe;
  const it = options.it ?? globals.it;
  if (typeof describe !== "function" || typeof it !== "function") {
    throw new InvalidArgumentError("runExecutorContract needs describe and it (pass them in options)");
  }
  describe(options.name ?? "executor contract", () => {
    for (const c of executorContractCases) it(c.name, () => c.run(openFresh));
  });
}
