import type { SingleBar } from "cli-progress";

/** The part of an output stream the progress decision reads (`process.stderr` in practice). */
export interface ProgressTarget {
  /** `true` when the stream is an interactive terminal. */
  readonly isTTY?: boolean;
}

/** Whether a command shows a progress bar: only on an interactive terminal, never with `--json`. */
export function wantsProgress(stream: ProgressTarget, options: { json?: boolean }): boolean {
  return stream.isTTY === true && options.json !== true;
}

/** A progress bar on stderr; see {@link startProgress}. */
export interface CliProgress {
  /** Sets the count done, and the total when known (a bar); without a total only the count is shown. */
  update(done: number, total?: number): void;
  /** Clears up the bar; call it before printing the command's result. Idempotent. */
  stop(): void;
}

/**
 * Starts a progress bar for `unit` (e.g. "rows") on `stream`, or returns `undefined` when
 * {@link wantsProgress} says no (not a terminal, or `--json`), so pipes and JSON consumers
 * never see it.
 *
 * @example
 * ```ts
 * const bar = await startProgress("rows", opts);
 * try { await log.verify({ onProgress: (done, total) => bar?.update(done, total) }); } finally { bar?.stop(); }
 * ```
 */
export async function startProgress(
  unit: string,
  options: { json?: boolean },
  stream: NodeJS.WriteStream = process.stderr,
): Promise<CliProgress | undefined> {
  if (!wantsProgress(stream, options)) return undefined;
  const { SingleBar, Presets } = await import("cli-progress");
  let bar: SingleBar | undefined;
  let stopped = false;
  return {
    update(done, total) {
      if (stopped) return;
      if (bar === undefined) {
        // The format is fixed when the bar starts: a bar when the total is known, a counter otherwise.
        const format = total === undefined ? `{value} ${unit}` : `{bar} {value}/{total} ${unit}`;
        bar = new SingleBar({ stream, format }, Presets.shades_classic);
        bar.start(total ?? 0, done);
      } else if (total !== undefined && total !== bar.getTotal()) bar.setTotal(total);
      bar.update(done);
    },
    stop() {
      if (stopped) return;
      stopped = true;
      bar?.stop();
    },
  };
}
