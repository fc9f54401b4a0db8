/** An error answer of the API: its HTTP status and the stable `code` of `{ error: { code, message } }`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Query parameters; `undefined` ones are left out. */
export type Query = Record<string, string | number | boolean | undefined>;

/** Options of one {@link Api.request}. */
export interface RequestOptions {
  method?: string;
  query?: Query;
  body?: BodyInit;
  json?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** One Server-Sent Event. */
export interface ServerEvent {
  event: string;
  data: string;
  id?: string;
}

/** Builds `path?query`, percent-encoding every value. */
export function withQuery(path: string, query: Query = {}): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
  const text = params.toString();
  return text === "" ? path : `${path}?${text}`;
}

/** Percent-encodes each `/`-separated segment of a key (files) or one name (state). */
export const seg = (name: string) => encodeURIComponent(name);

/**
 * The public HTTP API with the signed-in token in the `Authorization` header (never in a URL).
 * Every non-2xx answer throws an {@link ApiError} carrying the server's code.
 */
export class Api {
  /**
   * `onUnauthorized` runs on every 401 (the token was revoked or expired meanwhile), before the
   * request throws.
   */
  constructor(
    readonly token: string,
    readonly onUnauthorized: (err: ApiError) => void = () => {},
  ) {}

  async request(path: string, options: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}`, ...options.headers };
    let body = options.body;
    if (options.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(options.json);
    }
    let res: Response;
    try {
      res = await fetch(withQuery(path, options.query), {
        method: options.method ?? "GET",
        headers,
        ...(body === undefined ? {} : { body }),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
        cache: "no-store",
      });
    } catch (err) {
      if ((err as Error).name === "AbortError") throw err;
      throw new ApiError(0, "NETWORK", `the server did not answer (${(err as Error).message})`);
    }
    if (!res.ok) {
      const err = await errorOf(res);
      if (err.status === 401) this.onUnauthorized(err);
      throw err;
    }
    return res;
  }

  /**
   * Asks for JSON explicitly: the listing of a group named `events` shares its path with the
   * state event stream, which a request accepting anything would get instead.
   */
  async json<T>(path: string, options: RequestOptions = {}): Promise<T> {
    const headers = { accept: "application/json", ...options.headers };
    return (await this.request(path, { ...options, headers })).json() as Promise<T>;
  }

  async text(path: string, options: RequestOptions = {}): Promise<string> {
    return (await this.request(path, options)).text();
  }

  /**
   * Reads a Server-Sent Events stream through `fetch` (so the token goes in a header, which
   * `EventSource` cannot do) until `signal` aborts or the server ends it.
   */
  async stream(path: string, onEvent: (e: ServerEvent) => void, options: RequestOptions = {}): Promise<void> {
    const res = await this.request(path, { ...options, headers: { accept: "text/event-stream" } });
    const reader = res.body?.pipeThrough(new TextDecoderStream()).getReader();
    if (reader === undefined) return;
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value.replace(/\r\n?/g, "\n");
        let end = buffer.indexOf("\n\n");
        while (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const parsed = parseEvent(block);
          if (parsed !== undefined) onEvent(parsed);
          end = buffer.indexOf("\n\n");
        }
      }
    } catch (err) {
      if ((err as Error).name !== "AbortError") throw err;
    }
  }
}

function parseEvent(block: string): ServerEvent | undefined {
  let event = "message";
  const data: string[] = [];
  let id: string | undefined;
  for (const line of block.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
    else if (field === "id") id = value;
  }
  if (data.length === 0) return undefined;
  return { event, data: data.join("\n"), ...(id === undefined ? {} : { id }) };
}

async function errorOf(res: Response): Promise<ApiError> {
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    return new ApiError(res.status, body.error?.code ?? `HTTP_${res.status}`, body.error?.message ?? res.statusText);
  } catch {
    return new ApiError(res.status, `HTTP_${res.status}`, res.statusText || "request failed");
  }
}
