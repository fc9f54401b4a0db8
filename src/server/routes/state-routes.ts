import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { StateEvent, StateStore, StateWatcher } from "../../state/index.js";
import { HttpError } from "../error-reply.js";
import type { RequestIdentity } from "../identity.js";
import { identityOf } from "../request-context.js";

/** The caller's state store: the user's tenant when the identity has a user id, else the org's. */
export interface StateResolver {
  get(identity: RequestIdentity): Promise<StateStore>;
  /** Same store, kept open until `release()` (for event streams). */
  pin(identity: RequestIdentity): Promise<{ state: StateStore; release: () => void }>;
}

/** Options of {@link registerStateRoutes}. */
export interface StateRouteOptions {
  states: StateResolver;
  /** Largest value accepted by PUT, bytes. */
  maxValueBytes: number;
  /** Open SSE streams; the server ends them on shutdown. */
  streams: Set<{ end(): void }>;
  /** Heartbeat comment interval of SSE streams in ms. Default 15000. */
  heartbeatMs?: number;
}

const maxNameBytes = 512;
const defaultPageSize = 100;
const maxPageSize = 1000;

/**
 * State routes, each on the caller's own tenant:
 * `GET/PUT/DELETE /v1/state/:group/:key`, `GET /v1/state/:group?offset=&limit=`,
 * `GET /v1/state?prefix=`, `GET /v1/state/:group/events` (Server-Sent Events).
 */
export async function registerStateRoutes(app: FastifyInstance, options: StateRouteOptions): Promise<void> {
  const { states } = options;
  const withState = async <T>(identity: RequestIdentity, fn: (state: StateStore) => Promise<T>): Promise<T> =>
    fn(await states.get(identity));
  // Values are opaque text: accept any content type and keep the raw bytes.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: options.maxValueBytes }, (_req, body, done) => {
    done(null, body);
  });

  app.get("/v1/state/:group/:key", async (request, reply) => {
    const { group, key } = names(request);
    const value = await withState(identityOf(request), (state) => state.get(group, key));
    return reply.type("text/plain; charset=utf-8").header("x-content-type-options", "nosniff").send(value);
  });

  app.put("/v1/state/:group/:key", async (request, reply) => {
    const { group, key } = names(request);
    const value = bodyText(request.body);
    const ttl = ttlOf(request);
    await withState(identityOf(request), (state) =>
      ttl === undefined ? state.set(group, key, value) : state.setWithTtl(group, key, value, ttl),
    );
    return reply.code(204).send();
  });

  app.delete("/v1/state/:group/:key", async (request, reply) => {
    const { group, key } = names(request);
    await withState(identityOf(request), (state) => state.delete(group, key));
    return reply.code(204).send();
  });

  app.get("/v1/state/:group", async (request) => {
    const { group } = names(request);
    const query = request.query as Record<string, string | undefined>;
    const offset = intParam(query.offset, "offset", 0, Number.MAX_SAFE_INTEGER) ?? 0;
    const limit = intParam(query.limit, "limit", 1, maxPageSize) ?? defaultPageSize;
    return withState(identityOf(request), async (state) => {
      const [total, items] = [await state.count(group), await state.getPage(group, offset, limit)];
      return { group, offset, limit, total, items };
    });
  });

  app.get("/v1/state", async (request) => {
    const prefix = (request.query as Record<string, string | undefined>).prefix ?? "";
    if (Buffer.byteLength(prefix) > maxNameBytes || hasControlByte(prefix)) throw invalid("prefix");
    return withState(identityOf(request), async (state) => {
      const names = await state.groups(prefix);
      const groups = [];
      for (const name of names) groups.push({ group: name, count: await state.count(name) });
      return { prefix, keys: await state.countAll(prefix), groups };
    });
  });

  app.get("/v1/state/:group/events", async (request, reply) => {
    const { group } = names(request);
    const { state, release } = await states.pin(identityOf(request));
    try {
      await streamEvents(request, reply, state.watch(group), options);
    } finally {
      release();
    }
  });
}

async function streamEvents(
  request: FastifyRequest,
  reply: FastifyReply,
  watcher: StateWatcher,
  options: StateRouteOptions,
): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-store",
    "x-accel-buffering": "no",
    "x-content-type-options": "nosniff",
    connection: "keep-alive",
  });
  res.write(": watching\n\n");
  const iterator = watcher[Symbol.asyncIterator]();
  const stream = {
    end() {
      void iterator.return?.();
    },
  };
  options.streams.add(stream);
  const heartbeat = setInterval(() => res.write(": keep-alive\n\n"), options.heartbeatMs ?? 15_000);
  request.raw.on("close", () => stream.end());
  let id = 0;
  let dropped = 0;
  try {
    for (;;) {
      const next = await iterator.next();
      if (next.done) break;
      if (watcher.dropped > dropped) {
        dropped = watcher.dropped;
        res.write(`event: dropped\ndata: ${JSON.stringify({ dropped })}\n\n`);
      }
      res.write(`id: ${++id}\nevent: ${next.value.type}\ndata: ${JSON.stringify(toEvent(next.value))}\n\n`);
    }
  } finally {
    clearInterval(heartbeat);
    options.streams.delete(stream);
    res.end();
  }
}

function toEvent(change: StateEvent): StateEvent {
  const { type, group, key, value, timestamp } = change;
  return value === undefined ? { type, group, key, timestamp } : { type, group, key, value, timestamp };
}

function names(request: FastifyRequest): { group: string; key: string } {
  const params = request.params as { group?: string; key?: string };
  const group = params.group ?? "";
  const key = params.key ?? "";
  checkName(group, "group");
  if (params.key !== undefined) checkName(key, "key");
  return { group, key };
}

function checkName(value: string, what: string): void {
  if (value === "" || Buffer.byteLength(value) > maxNameBytes || hasControlByte(value)) {
    throw new HttpError(400, "INVALID_KEY", `${what} must be 1-${maxNameBytes} bytes without control characters`);
  }
}

function bodyText(body: unknown): string {
  if (body === undefined || body === null) return "";
  if (!Buffer.isBuffer(body))
    throw new HttpError(400, "INVALID_ARGUMENT", "value must be sent as the raw request body");
  const text = body.toString("utf8");
  if (!Buffer.from(text, "utf8").equals(body))
    throw new HttpError(400, "INVALID_ARGUMENT", "value must be valid UTF-8");
  return text;
}

function ttlOf(request: FastifyRequest): number | undefined {
  return intParam((request.query as Record<string, string | undefined>).ttl, "ttl", 1, Number.MAX_SAFE_INTEGER);
}

function intParam(raw: string | undefined, name: string, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const n = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw invalid(`${name} (an integer ${min}..${max})`);
  return n;
}

function invalid(what: string): HttpError {
  return new HttpError(400, "INVALID_ARGUMENT", `invalid ${what}`);
}

function hasControlByte(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}
