/** `value` when it is a positive finite number, else `fallback` (the seed's `Effective*` rule: <= 0 means the default). */
export function effective(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) && value > 0 ? value : fallback;
}

/**
 * Runs `tick` every `intervalMs` on an unref'd timer, never two ticks at once. Errors go to
 * `onError`; the timer keeps running.
 */
export class WorkerTimer {
  readonly #intervalMs: number;
  readonly #tick: () => Promise<unknown>;
  readonly #onError: (err: unknown) => void;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> | undefined;

  constructor(intervalMs: number, tick: () => Promise<unknown>, onError: (err: unknown) => void) {
    this.#intervalMs = intervalMs;
    this.#tick = tick;
    this.#onError = onError;
  }

  get started(): boolean {
    return this.#timer !== undefined;
  }

  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => {
      if (this.#running !== undefined) return;
      this.#running = this.#tick()
        .catch(this.#onError)
        .finally(() => {
          this.#running = undefined;
        });
    }, this.#intervalMs);
    this.#timer.unref();
  }

  /** Stops the timer and waits for a tick in progress. */
  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }
}

/** The default `onError` of workers: a process warning, so failures are visible without crashing. */
export function warnWorkerError(worker: string): (err: unknown) => void {
  return (err) => process.emitWarning(`${worker} tick failed: ${err instanceof Error ? err.message : String(err)}`);
}
