import type { FastifyInstance } from "fastify";
import { AccessDeniedError, NotFoundError, UnsupportedError } from "../../errors.js";
import { parseDuration } from "../../internal/duration.js";
import { HttpError } from "../error-reply.js";
import { canAdministerOrg, isOperator, Role } from "../identity.js";
import { requireJsonBody } from "../json-body.js";
import { orgParam } from "../query-params.js";
import { administeredOrg, identityOf } from "../request-context.js";
import type { TokenStore } from "../token-store.js";

/**
 * Token management over HTTP, scoped like every admin route (an admin's own org; an operator
 * any org): `GET /v1/tokens[?org=]` (records, never secrets; the one this request was made
 * with has `current: true`), `POST /v1/tokens` (the new token is in the answer, once),
 * `DELETE /v1/tokens/:id`. In gateway mode there is no token store and every route answers 501
 * `UNSUPPORTED`.
 */
export function registerTokenRoutes(app: FastifyInstance, store: TokenStore | undefined): void {
  const tokens = (): TokenStore => {
    if (store === undefined) {
      throw new UnsupportedError("tokens are managed by the gateway in gateway mode", { op: "server.tokens" });
    }
    return store;
  };

  app.get("/v1/tokens", { config: { auth: "admin" } }, async (request) => {
    const org = administeredOrg(identityOf(request), orgParam(request));
    const store = tokens();
    // The token this very request was made with, so the console can mark its own session
    // whatever kind of token it signed in with (the listing never carries secrets or digests).
    const bearer = /^bearer +(\S+) *$/i.exec(request.headers.authorization ?? "")?.[1];
    const currentId = bearer === undefined ? undefined : store.identify(bearer)?.id;
    return {
      tokens: store.list({ orgId: org }).map((t) => (t.id === currentId ? { ...t, current: true } : t)),
    };
  });

  app.post("/v1/tokens", { config: { auth: "admin" }, preParsing: requireJsonBody }, async (request, reply) => {
    const identity = identityOf(request);
    const body = (request.body ?? {}) as Record<string, unknown>;
    if (typeof body !== "object" || Array.isArray(body)) throw badBody("the body must be a JSON object");
    for (const key of Object.keys(body)) {
      if (!["orgId", "userId", "roles", "expiresIn", "expiresAt", "label"].includes(key)) {
        throw badBody(`unknown field "${key}"`);
      }
    }
    const orgId = administeredOrg(identity, optionalString(body, "orgId") ?? identity.orgId) as string;
    const roles = body.roles ?? [];
    if (!Array.isArray(roles) || !roles.every((r) => typeof r === "string")) throw badBody("roles must be strings");
    if (roles.includes(Role.operator) && !isOperator(identity)) {
      throw new AccessDeniedError("only an operator may grant the operator role", { op: "server.tokens" });
    }
    const expiresIn = optionalString(body, "expiresIn");
    const expiresAtText = optionalString(body, "expiresAt");
    if (expiresIn !== undefined && expiresAtText !== undefined) throw badBody("give expiresIn or expiresAt, not both");
    const expiresAt = expiresAtText === undefined ? undefined : new Date(expiresAtText);
    if (expiresAt !== undefined && Number.isNaN(expiresAt.getTime())) throw badBody("expiresAt must be an ISO time");
    const userId = optionalString(body, "userId");
    const label = optionalString(body, "label");
    const created = await tokens().add({
      orgId,
      roles: roles as string[],
      ...(userId === undefined ? {} : { userId }),
      ...(expiresAt === undefined ? {} : { expiresAt }),
      ...(expiresIn === undefined ? {} : { expiresInMs: parseDuration(expiresIn, "expiresIn") }),
      ...(label === undefined ? {} : { label }),
    });
    return reply.code(201).send({ token: created.token, ...created.record });
  });

  app.delete("/v1/tokens/:id", { config: { auth: "admin" } }, async (request, reply) => {
    const identity = identityOf(request);
    const { id } = request.params as { id: string };
    const record = tokens().get(id);
    // Another org's token answers like a missing one, so ids of other orgs do not leak.
    if (record === undefined || !canAdministerOrg(identity, record.orgId)) {
      throw new NotFoundError(`no token with id ${id}`, { op: "server.tokens" });
    }
    await tokens().revoke(id);
    return reply.code(204).send();
  });
}

function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const value = body[key];
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw badBody(`${key} must be a string`);
  return value;
}

function badBody(message: string): HttpError {
  return new HttpError(400, "INVALID_ARGUMENT", message);
}
