import { createHash } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { HttpError } from "../error-reply.js";
import type { ConsoleAssets } from "./console-assets.js";

/** Everything the page loads comes from this server; the console talks only to the public API. */
const contentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join("; ");

/**
 * `GET /` (the admin console's page), `GET /console/app.js`, `GET /console/app.css` and
 * `GET /favicon.ico` (204, no icon), all anonymous: they hold no data; the page signs in with a
 * token and uses the public API. When the bundle was not built (`assets` undefined, see
 * `loadConsoleAssets`) the first three answer 501 `UNSUPPORTED`.
 */
export function registerConsoleRoutes(app: FastifyInstance, assets: ConsoleAssets | undefined): void {
  const serve = (type: string, pick: (a: ConsoleAssets) => Buffer) => {
    const body = assets === undefined ? undefined : pick(assets);
    const etag = body === undefined ? "" : `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`;
    return async (request: FastifyRequest, reply: FastifyReply) => {
      if (body === undefined) throw new HttpError(501, "UNSUPPORTED", "the console is not built (run npm run build)");
      reply
        .type(type)
        .header("x-content-type-options", "nosniff")
        .header("cache-control", "no-cache")
        .header("etag", etag)
        .header("content-security-policy", contentSecurityPolicy)
        .header("referrer-policy", "no-referrer")
        .header("x-frame-options", "DENY");
      if (request.headers["if-none-match"] === etag) return reply.code(304).send();
      return reply.send(body);
    };
  };
  app.get(
    "/",
    { config: { auth: "none" } },
    serve("text/html; charset=utf-8", (a) => a.html),
  );
  app.get(
    "/console/app.js",
    { config: { auth: "none" } },
    serve("text/javascript; charset=utf-8", (a) => a.script),
  );
  // Browsers ask for an icon on every page load; without this route they log the 401.
  app.get("/favicon.ico", { config: { auth: "none" } }, async (_request, reply) =>
    reply.code(204).header("cache-control", "max-age=86400").send(),
  );
  app.get(
    "/console/app.css",
    { config: { auth: "none" } },
    serve("text/css; charset=utf-8", (a) => a.styles),
  );
}
