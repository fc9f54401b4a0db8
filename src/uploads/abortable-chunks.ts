/** Thrown out of {@link abortableChunks} when its signal aborted. */
export class ChunksAbortedError extends Error {
  constructor() {
    super("reading the body was stopped");
    this.name = "ChunksAbortedError";
  }
}

/**
 * Yields the chunks of `body` as bytes until it ends or `signal` aborts; an abort rejects the
 * pending read at once (even when the source never delivers another chunk) with
 * {@link ChunksAbortedError}, and stops the source without waiting for it (a stream is
 * destroyed, so a request whose client vanished frees its connection). A reader that stops on
 * its own leaves a stream undestroyed, so an HTTP request can still be answered.
 */
export async function* abortableChunks(
  body: AsyncIterable<Uint8Array | string>,
  signal: AbortSignal,
): AsyncGenerator<Uint8Array> {
  // A stream is iterated without being destroyed when the reader stops on its own (a body
  // refused midway): destroying an HTTP request closes its connection before the answer.
  const readable = body as { iterator?: (options: { destroyOnReturn: boolean }) => AsyncIterator<Uint8Array | string> };
  const iterator =
    typeof readable.iterator === "function"
      ? readable.iterator({ destroyOnReturn: false })
      : body[Symbol.asyncIterator]();
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new ChunksAbortedError());
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
  aborted.catch(() => undefined);
  try {
    for (;;) {
      const next = await Promise.race([iterator.next(), aborted]);
      if (next.done) return;
      yield typeof next.value === "string" ? Buffer.from(next.value) : next.value;
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    // A stream's iterator only runs return() after its pending read settles, which may be never: destroy it directly.
    const destroy = (body as { destroy?: unknown }).destroy;
    if (signal.aborted && typeof destroy === "function") destroy.call(body);
    else void iterator.return?.()?.catch(() => undefined);
  }
}
