import type { FastifyInstance } from "fastify";
import type { Clock } from "../../clock.js";
import { TenantKey } from "../../tenants/index.js";
import type { Cluster } from "../cluster.js";
import type { OrgBuses } from "../org-buses.js";
import { readQueueDepths } from "../queue-depths.js";
import { administeredOrg, identityOf } from "../request-context.js";
import type { ServerParts } from "../server-parts.js";

/** Tenants shown per inspector refresh, and keys shown per group (of resident tenants). */
const maxTenants = 50;
const keysPerGroup = 20;

/**
 * Admin `GET /v1/inspector`: tenants with their groups and first keys, queue depths and the
 * bus audit chain, scoped like every admin route (an admin's own org, or every org for an
 * operator). The console's tenants page reads it beside `GET /v1/tenants`.
 */
export function registerInspectorRoutes(
  app: FastifyInstance,
  parts: ServerParts,
  buses: OrgBuses,
  clock: Clock,
  cluster: Cluster | undefined,
): void {
  // An admin sees its own org (tenants, its bus queue and audit chain); an operator sees every org and the server's queues.
  app.get("/v1/inspector", { config: { auth: "admin" } }, async (request) => {
    const org = administeredOrg(identityOf(request), undefined);
    const stored = await parts.tenants.list(org === undefined ? {} : { orgId: org });
    const ids = new Set(stored.map((t) => t.key.toString()));
    const keys = stored.map((t) => t.key);
    for (const id of parts.cachedTenantIds()) {
      if (!ids.has(id)) {
        const key = TenantKey.parse(id);
        if (org !== undefined && key.orgId !== org) continue;
        ids.add(id);
        keys.push(key);
      }
    }
    const tenants = [];
    for (const key of keys.slice(0, maxTenants)) {
      // Another live node owns it: shown with its owner, never loaded (and so never taken over) here.
      const lease = await parts.leases?.lookup(key);
      if (lease !== undefined && lease.holder !== cluster?.id && lease.expiresAt > clock.now()) {
        tenants.push({ tenant: key.toString(), scope: key.scope, resident: false, owner: lease.holder, groups: [] });
        continue;
      }
      const info = await parts.tenants.inspect(key);
      // Reading the groups of a tenant that is not open here would load it: looking would
      // change what is looked at (every tenant listed would show as resident).
      if (!info.resident) {
        tenants.push({
          tenant: key.toString(),
          scope: key.scope,
          resident: false,
          ...(cluster === undefined ? {} : { owner: cluster.id }),
          groups: [],
        });
        continue;
      }
      try {
        const groups = await parts.useState(key, async (state) => {
          const found = [];
          for (const group of await state.groups()) {
            const page = await state.getPage(group, 0, keysPerGroup);
            found.push({ group, count: await state.count(group), keys: page.map((e) => e.key) });
          }
          return found;
        });
        tenants.push({
          tenant: key.toString(),
          scope: key.scope,
          resident: info.resident,
          ...(cluster === undefined ? {} : { owner: cluster.id }),
          lagMs: info.replica?.lagMs ?? 0,
          groups,
        });
      } catch (err) {
        tenants.push({
          tenant: key.toString(),
          scope: key.scope,
          resident: info.resident,
          groups: [],
          error: (err as Error).message,
        });
      }
    }
    const orgs = await buses.auditStatus(org);
    const broken = orgs.find((o) => !o.intact);
    return {
      generatedAt: clock.now(),
      tenants,
      tenantsTotal: keys.length,
      conflicts: (await parts.tenants.conflicts())
        .filter((c) => org === undefined || c.tenant.startsWith(`${org}/`))
        .map((c) => ({
          id: c.id,
          tenant: c.tenant,
          reason: c.reason,
          time: c.time,
          unpublishedTransactions: c.unpublishedTransactions,
        })),
      queues:
        org === undefined ? await readQueueDepths(parts, buses) : { bus_pending: await buses.countUndelivered(org) },
      audit: {
        rows: orgs.reduce((n, o) => n + o.rows, 0),
        intact: broken === undefined,
        ...(broken?.break === undefined ? {} : { break: { orgId: broken.orgId, ...broken.break } }),
        orgs,
      },
      ...(cluster === undefined ? {} : { cluster: await cluster.status() }),
    };
  });
}
