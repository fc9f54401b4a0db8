import type { FastifyInstance, FastifyRequest } from "fastify";
import type { DeleteQueue } from "../../uploads/index.js";
import { HttpError } from "../error-reply.js";
import { canAdministerOrg } from "../identity.js";
import { orgParam } from "../query-params.js";
import { administeredOrg, identityOf } from "../request-context.js";

/** Rows listed per answer, newest dead letters and oldest pending deletes first. */
const maxRows = 200;

/**
 * Admin routes over the delete queue, scoped by the owner of each row (an admin: its own org's
 * tenants; an operator: every org, or `?org=`):
 * `GET /v1/delete-queue` (pending deletes and dead letters),
 * `POST /v1/delete-queue/dead-letters/:id/retry` (queue it again, due now) and
 * `DELETE /v1/delete-queue/dead-letters/:id` (forget it; the object stays). A dead letter of
 * another org answers 404 like an unknown one.
 */
export function registerDeleteQueueRoutes(app: FastifyInstance, queue: DeleteQueue): void {
  app.get("/v1/delete-queue", { config: { auth: "admin" } }, async (request) => {
    const org = administeredOrg(identityOf(request), orgParam(request));
    const mine = (row: { owner: string }) => org === undefined || row.owner.startsWith(`${org}/`);
    // Rows carry their owner as text; the queue is small, so filtering here is enough.
    const pending = (await queue.list()).filter(mine).slice(0, maxRows);
    const deadLetters = (await queue.deadLetters()).filter(mine).slice(0, maxRows);
    return { pending, deadLetters };
  });

  const deadLetterOf = async (request: FastifyRequest) => {
    const { id } = request.params as { id: string };
    const dead = await queue.getDeadLetter(id);
    const orgId = dead?.owner.split("/")[0] ?? "";
    if (dead === undefined || !canAdministerOrg(identityOf(request), orgId)) {
      throw new HttpError(404, "NOT_FOUND", `no dead letter ${id}`);
    }
    return dead;
  };

  app.post("/v1/delete-queue/dead-letters/:id/retry", { config: { auth: "admin" } }, async (request) => {
    const dead = await deadLetterOf(request);
    return { pending: await queue.retryDeadLetter(dead.id) };
  });

  app.delete("/v1/delete-queue/dead-letters/:id", { config: { auth: "admin" } }, async (request, reply) => {
    const dead = await deadLetterOf(request);
    await queue.dropDeadLetter(dead.id);
    return reply.code(204).send();
  });
}
