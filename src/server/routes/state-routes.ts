import type { OutgoingHttpHeaders } from "node:http";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { NotFoundError, VersionConflictError } from "../../errors.js";
import type { BatchOperation, StateEvent, StateStore, VersionCheck } from "../../state/index.js";
import { evaluatePreconditions } from "../conditional-request.js";
import { HttpError } from "../error-reply.js";
import type { RequestIdentity } from "../identity.js";
import { requireJsonBody } from "../json-body.js";
import { integerParam, lastEventIdParam, textParam } from "../query-params.js";
import { identityOf } from "../request-context.js";

/** The caller's state store: the user's tenant when the identity has a user id, else the org's. */
export interface StateResolver {
  /** Runs `fn` on the caller's store, which stays open until `fn` settles. */
  use<T>(identity: RequestIdentity, fn: (state: StateStore) => Promise<T>): Promise<T>;
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

const maxBatchOperations = 1000;
const maxConditionalRetries = 16;
const reconnectDelayMs = 1000;

/**
 * State routes, each on the caller's own tenant:
 * `GET/PUT/DELETE /v1/state/:group/:key` (ETag, `If-Match`, `If-None-Match`, `?ttl=`),
 * `GET /v1/state/:group?prefix=&offset=&limit=`, `POST /v1/state/:group` and `POST /v1/state`
 * (atomic batches in one group, or across groups),
 * `DELETE /v1/state/:group`, `GET /v1/state?prefix=&offset=&limit=`, and Server-Sent Events
 * that resume with `Last-Event-ID`: `GET /v1/state/:group/events` and
 * `GET /v1/state/events?prefix=`.
 */
export async function registerStateRoutes(app: FastifyInstance, options: StateRouteOptions): Promise<void> {
  const { states } = options;
  const withState = async <T>(identity: RequestIdentity, fn: (state: StateStore) => Promise<T>): Promise<T> =>
    states.use(identity, fn);
  // Values are opaque text: accept any content type and keep the raw bytes (batches check theirs first).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: options.maxValueBytes }, (_req, body, done) => {
    done(null, body);
  });

  const readValue = async (request: FastifyRequest, reply: FastifyReply, group: string, key: string) => {
    const entry = await withState(identityOf(request), (state) => state.getEntry(group, key));
    if (entry === null) throw new NotFoundError(`${group}/${key}`, { op: "state.get" });
    const etag = etagOf(entry.version);
    reply.header("etag", etag).header("cache-control", "no-cache");
    if (entry.expiresAt !== null) reply.header("x-expires-at", String(entry.expiresAt));
    const precondition = evaluatePreconditions(request.headers, etag, "GET");
    if (precondition === "not-modified") return reply.code(304).send();
    if (precondition === "failed") throw preconditionFailed(group, key, entry.version);
    return reply.type("text/plain; charset=utf-8").header("x-content-type-options", "nosniff").send(entry.value);
  };

  app.get("/v1/state/:group/:key", async (request, reply) => {
    const { group, key } = names(request);
    return readValue(request, reply, group, key);
  });

  app.put("/v1/state/:group/:key", async (request, reply) => {
    const { group, key } = names(request);
    const value = bodyText(request.body);
    const ttlMs = ttlOf(request);
    const version = await withState(identityOf(request), (state) =>
      conditionally(state, request, reply, group, key, (ifVersion) =>
        state.set(group, key, value, {
          ...(ifVersion === undefined ? {} : { ifVersion }),
          ...(ttlMs === undefined ? {} : { ttlMs }),
        }),
      ),
    );
    return reply.code(204).header("etag", etagOf(version)).send();
  });

  app.delete("/v1/state/:group/:key", async (request, reply) => {
    const { group, key } = names(request);
    await withState(identityOf(request), (state) =>
      conditionally(state, request, reply, group, key, (ifVersion) =>
        state.delete(group, key, ifVersion === undefined ? {} : { ifVersion }),
      ),
    );
    return reply.code(204).send();
  });

  const listGroup = async (request: FastifyRequest, group: string) => {
    const { prefix, offset, limit } = pageOf(request);
    return withState(identityOf(request), async (state) => {
      const total = await state.count(group, prefix);
      const entries = await state.getEntries(group, { keyPrefix: prefix, offset, limit });
      const items = entries.map(({ key, value, version, expiresAt }) => ({ key, value, version, expiresAt }));
      return { group, prefix, offset, limit, total, items };
    });
  };

  app.get("/v1/state/:group", async (request) => listGroup(request, names(request).group));

  const applyBatch = async (request: FastifyRequest, group: string | undefined) => {
    const { operations, checks } = parseBatch(request.body, group);
    return withState(identityOf(request), async (state) => {
      try {
        return await state.batch(operations, { checks });
      } catch (err) {
        if (err instanceof VersionConflictError) throw batchConflict(err);
        throw err;
      }
    });
  };

  app.post("/v1/state/:group", { preParsing: requireJsonBody }, async (request) => {
    const { group } = names(request);
    const { version, versions } = await applyBatch(request, group);
    return { group, version, versions };
  });

  app.post("/v1/state", { preParsing: requireJsonBody }, async (request) => {
    const { version, versions } = await applyBatch(request, undefined);
    return { version, versions };
  });

  app.delete("/v1/state/:group", async (request) => {
    const { group } = names(request);
    const deleted = await withState(identityOf(request), (state) => state.deleteGroup(group));
    return { group, deleted };
  });

  app.get("/v1/state", async (request) => {
    const { prefix, offset, limit } = pageOf(request);
    return withState(identityOf(request), async (state) => {
      const all = await state.groups(prefix);
      const groups = [];
      for (const name of all.slice(offset, offset + limit))
        groups.push({ group: name, count: await state.count(name) });
      return {
        prefix,
        offset,
        limit,
        total: all.length,
        keys: await state.countAll(prefix),
        version: await state.version(),
        groups,
      };
    });
  });

  const stream = async (request: FastifyRequest, reply: FastifyReply, filter: EventFilter) => {
    const { state, release } = await states.pin(identityOf(request));
    try {
      await streamEvents(request, reply, state, filter, options);
    } finally {
      release();
    }
  };

  // A group or key literally named "events" is still readable: ask for JSON or text instead of a stream.
  app.get("/v1/state/events", async (request, reply) => {
    if (!wantsStream(request)) return listGroup(request, "events");
    const prefix = prefixParam(request);
    return stream(request, reply, { groupPrefix: prefix });
  });

  app.get("/v1/state/:group/events", async (request, reply) => {
    const { group } = names(request);
    if (!wantsStream(request)) return readValue(request, reply, group, "events");
    return stream(request, reply, { group });
  });
}

/** Which changes a stream carries: one group, or every group starting with a prefix (`""` = all). */
type EventFilter = { readonly group: string } | { readonly groupPrefix: string };

function wantsStream(request: FastifyRequest): boolean {
  const accept = request.headers.accept;
  return accept === undefined || accept.includes("text/event-stream") || accept.includes("*/*");
}

/**
 * Streams changes as SSE, each with the change's store version as `id`. With `Last-Event-ID`
 * (sent by a reconnecting `EventSource`) or `?lastEventId=`, first replays what the client
 * missed from the change log, or sends `event: reset` when the log no longer reaches back that
 * far. The watcher is registered before the replay and live events already replayed are
 * skipped, so nothing falls in between; when the watcher's buffer overflows, the stream catches
 * up from the log instead of losing events.
 */
async function streamEvents(
  request: FastifyRequest,
  reply: FastifyReply,
  state: StateStore,
  filter: EventFilter,
  options: StateRouteOptions,
): Promise<void> {
  const resumeFrom = lastEventIdParam(request);
  const watcher = state.watch("group" in filter ? filter.group : "*", { bufferSize: 256 });
  const matches = (e: StateEvent) => ("group" in filter ? true : e.group.startsWith(filter.groupPrefix));
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    // What the hooks set (the node that serves the stream, in a cluster) goes out too.
    ...(reply.getHeaders() as OutgoingHttpHeaders),
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-store",
    "x-accel-buffering": "no",
    "x-content-type-options": "nosniff",
    connection: "keep-alive",
  });
  // Reconnecting clients (EventSource) wait 1 s, then resume with Last-Event-ID.
  res.write(`retry: ${reconnectDelayMs}\n: watching\n\n`);
  const iterator = watcher[Symbol.asyncIterator]();
  const handle = {
    end() {
      void iterator.return?.();
    },
  };
  options.streams.add(handle);
  const heartbeat = setInterval(() => res.write(": keep-alive\n\n"), options.heartbeatMs ?? 15_000);
  request.raw.on("close", () => handle.end());
  const query = "group" in filter ? { group: filter.group } : { groupPrefix: filter.groupPrefix };
  let sent = resumeFrom;
  const catchUp = async (after: number): Promise<number> => {
    let from = after;
    for (;;) {
      const page = await state.changesSince(from, { ...query, limit: 500 });
      if (page.reset) {
        res.write(`id: ${page.version}\nevent: reset\ndata: ${JSON.stringify({ version: page.version })}\n\n`);
        return page.version;
      }
      for (const change of page.changes) res.write(frame(change));
      from = page.more ? (page.changes[page.changes.length - 1] as StateEvent).version : page.version;
      if (!page.more) return from;
    }
  };
  let dropped = 0;
  try {
    if (sent !== undefined) sent = await catchUp(sent);
    for (;;) {
      const next = await iterator.next();
      if (next.done) break;
      if (watcher.dropped > dropped) {
        dropped = watcher.dropped;
        sent = await catchUp(sent ?? next.value.version - 1);
      }
      const event = next.value;
      if (!matches(event) || (sent !== undefined && event.version <= sent)) continue;
      res.write(frame(event));
      sent = event.version;
    }
  } finally {
    clearInterval(heartbeat);
    options.streams.delete(handle);
    res.end();
  }
}

function frame(change: StateEvent): string {
  const { type, group, key, value, timestamp, version } = change;
  const data =
    value === undefined ? { type, group, key, timestamp, version } : { type, group, key, value, timestamp, version };
  return `id: ${version}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
}

function etagOf(version: number): string {
  return `"${version}"`;
}

/** The version a single strong entity tag names, or `undefined` for anything else (`*`, lists, weak tags). */
function versionOfTag(header: string): number | undefined {
  const m = /^\s*"(\d{1,15})"\s*$/.exec(header);
  return m === null ? undefined : Number(m[1]);
}

/**
 * Runs a conditional write. `If-Match: "v"` and `If-None-Match: *` map directly onto
 * `ifVersion`; other forms (`If-Match: *`, lists) are evaluated against the current entry and
 * the write is then made conditional on the version read, retried when the entry changed in
 * between. A failed precondition answers 412 with the current ETag.
 */
async function conditionally<T>(
  state: StateStore,
  request: FastifyRequest,
  reply: FastifyReply,
  group: string,
  key: string,
  write: (ifVersion: number | null | undefined) => Promise<T>,
): Promise<T> {
  const ifMatch = request.headers["if-match"];
  const ifNoneMatch = request.headers["if-none-match"];
  const failed = (current?: number): PreconditionFailed => {
    if (current !== undefined) reply.header("etag", etagOf(current));
    return preconditionFailed(group, key, current);
  };
  const onConflict = async (err: unknown): Promise<never> => {
    if (!(err instanceof VersionConflictError)) throw err;
    throw failed((await state.getEntry(group, key))?.version);
  };
  if (ifMatch === undefined && ifNoneMatch === undefined) return write(undefined);
  if (ifNoneMatch === undefined && ifMatch !== undefined && versionOfTag(ifMatch) !== undefined) {
    return write(versionOfTag(ifMatch)).catch(onConflict);
  }
  if (ifMatch === undefined && ifNoneMatch?.trim() === "*") return write(null).catch(onConflict);
  for (let attempt = 0; attempt < maxConditionalRetries; attempt++) {
    const entry = await state.getEntry(group, key);
    if (entry === null) {
      if (ifMatch !== undefined) throw failed();
    } else if (evaluatePreconditions(request.headers, etagOf(entry.version), request.method) !== "proceed") {
      throw failed(entry.version);
    }
    try {
      return await write(entry === null ? null : entry.version);
    } catch (err) {
      if (!(err instanceof VersionConflictError)) throw err;
    }
  }
  throw failed();
}

type PreconditionFailed = HttpError;

function preconditionFailed(group: string, key: string, current?: number): PreconditionFailed {
  const state = current === undefined ? "absent" : `at version ${current}`;
  return new HttpError(412, "VERSION_CONFLICT", `precondition failed: ${group}/${key} is ${state}`);
}

function batchConflict(err: VersionConflictError): HttpError {
  const detail = err.mismatches.map(
    (m) => `${m.group}/${m.key}: expected ${m.expected ?? "absent"}, is ${m.actual ?? "absent"}`,
  );
  return new HttpError(412, "VERSION_CONFLICT", `batch checks failed (${detail.join("; ")}); nothing was written`);
}

/**
 * Parses a batch body: `{ "ops": [{ "op": "set", "key", "value", "ttl"? } | { "op": "delete", "key" }],
 * "checks": [{ "key", "version": number | null }] }`, every key within the route's `group`; without
 * one (`POST /v1/state`), every operation and check names its own `"group"`.
 */
function parseBatch(
  body: unknown,
  routeGroup: string | undefined,
): { operations: BatchOperation[]; checks: VersionCheck[] } {
  const text = bodyText(body);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new HttpError(400, "INVALID_ARGUMENT", "batch body must be JSON");
  }
  const { ops, checks = [] } = (parsed ?? {}) as { ops?: unknown; checks?: unknown };
  if (!Array.isArray(ops) || ops.length === 0 || ops.length > maxBatchOperations) {
    throw new HttpError(400, "INVALID_ARGUMENT", `ops must be an array of 1-${maxBatchOperations} operations`);
  }
  if (!Array.isArray(checks)) throw new HttpError(400, "INVALID_ARGUMENT", "checks must be an array");
  const groupOf = (item: Record<string, unknown>, where: string): string => {
    if (routeGroup !== undefined) return routeGroup;
    if (typeof item.group !== "string") throw new HttpError(400, "INVALID_ARGUMENT", `${where}.group must be a string`);
    checkName(item.group, "group");
    return item.group;
  };
  const operations = ops.map((o: unknown, i): BatchOperation => {
    const item = (o ?? {}) as Record<string, unknown>;
    const { op, key, value, ttl } = item;
    const group = groupOf(item, `ops[${i}]`);
    if (typeof key !== "string") throw new HttpError(400, "INVALID_ARGUMENT", `ops[${i}].key must be a string`);
    checkName(key, "key");
    if (op === "delete") return { type: "delete", group, key };
    if (op !== "set") throw new HttpError(400, "INVALID_ARGUMENT", `ops[${i}].op must be "set" or "delete"`);
    if (typeof value !== "string") throw new HttpError(400, "INVALID_ARGUMENT", `ops[${i}].value must be a string`);
    if (ttl === undefined) return { type: "set", group, key, value };
    if (typeof ttl !== "number" || !Number.isSafeInteger(ttl) || ttl < 1) {
      throw new HttpError(400, "INVALID_ARGUMENT", `ops[${i}].ttl must be a positive integer (ms)`);
    }
    return { type: "set", group, key, value, ttlMs: ttl };
  });
  const versionChecks = checks.map((c: unknown, i): VersionCheck => {
    const item = (c ?? {}) as Record<string, unknown>;
    const { key, version } = item;
    const group = groupOf(item, `checks[${i}]`);
    if (typeof key !== "string") throw new HttpError(400, "INVALID_ARGUMENT", `checks[${i}].key must be a string`);
    checkName(key, "key");
    if (version !== null && (typeof version !== "number" || !Number.isSafeInteger(version) || version < 0)) {
      throw new HttpError(400, "INVALID_ARGUMENT", `checks[${i}].version must be a version number or null`);
    }
    return { group, key, version: version as number | null };
  });
  return { operations, checks: versionChecks };
}

function prefixParam(request: FastifyRequest): string {
  return textParam(request, "prefix", { maxBytes: maxNameBytes }) ?? "";
}

/** `?prefix=&offset=&limit=` of a listing. */
function pageOf(request: FastifyRequest): { prefix: string; offset: number; limit: number } {
  return {
    prefix: prefixParam(request),
    offset: integerParam(request, "offset", { min: 0 }) ?? 0,
    limit: integerParam(request, "limit", { min: 1, max: maxPageSize }) ?? defaultPageSize,
  };
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
  return integerParam(request, "ttl", { min: 1 });
}

function hasControlByte(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}
