import { createHmac } from "node:crypto";
import type { OutboxRecord, OutboxSink } from "../uploads/index.js";

/** Options of {@link WebhookSink}. */
export interface WebhookSinkOptions {
  /** Where events are POSTed (`http://` or `https://`). */
  url: string;
  /** HMAC-SHA256 key of the `Storeroom-Signature` header. */
  secret: string;
  /** Give up on one attempt after this long, ms. Default 10 000. */
  timeoutMs?: number;
}

/** The signature header value of `body`: `sha256=<hex HMAC-SHA256 of the exact body bytes>`. */
export function webhookSignature(secret: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/**
 * Delivers each upload event as one HTTP POST with a JSON body `{ id, topic, payload,
 * createdAt }` and headers `Storeroom-Event-Id`, `Storeroom-Event-Topic` and
 * `Storeroom-Signature` ({@link webhookSignature}). Any 2xx answer accepts the event; anything
 * else, a network error or the timeout is a failed attempt (the dispatcher retries). The same
 * event may arrive more than once: dedupe by id.
 */
export class WebhookSink implements OutboxSink {
  readonly name: string;
  readonly #url: string;
  readonly #secret: string;
  readonly #timeoutMs: number;

  constructor(options: WebhookSinkOptions) {
    this.#url = options.url;
    this.#secret = options.secret;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    // Origin and path (no query, which may carry a secret): delivery state is kept by this name.
    const url = new URL(options.url);
    this.name = `webhook ${url.origin}${url.pathname}`;
  }

  async deliver(event: OutboxRecord): Promise<void> {
    const body = JSON.stringify({
      id: event.id,
      topic: event.topic,
      payload: event.payload,
      createdAt: event.createdAt,
    });
    const res = await fetch(this.#url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "storeroom-event-id": String(event.id),
        "storeroom-event-topic": event.topic,
        "storeroom-signature": webhookSignature(this.#secret, body),
      },
      body,
      signal: AbortSignal.timeout(this.#timeoutMs),
    });
    await res.body?.cancel();
    if (!res.ok) throw new Error(`${this.name} answered ${res.status}`);
  }
}
