import { formatAgo, formatBytes, formatTime, h, pill, table } from "../dom.js";
import { href, type PageContext } from "../session.js";
import { card, errorBox, pageHeader } from "../ui.js";

interface StoredTenant {
  tenant: string;
  orgId: string;
  userId?: string;
  scope: string;
  size: number;
  lastModified: number;
  resident: boolean;
  lagMs?: number;
}

interface InspectedTenant {
  tenant: string;
  scope: string;
  resident: boolean;
  dirtyChanges?: number;
  lagMs?: number;
  groups: { group: string; count: number }[];
}

interface Inspector {
  tenants: InspectedTenant[];
  conflicts?: { id: string; tenant: string; reason: string; time: number; unpublishedTransactions: number | null }[];
}

/** Tenants of the org: size, residency, last checkpoint, replication lag, conflicts; each opens the data browser. */
export async function tenantsPage(ctx: PageContext): Promise<Node> {
  const { api, operator } = ctx.session;
  // An operator may list every org at once (`#/tenants/all`).
  const everyOrg = operator && ctx.params[0] === "all";
  const org = everyOrg ? undefined : ctx.session.org;
  const [stored, inspected] = await Promise.all([
    api.json<{ tenants: StoredTenant[] }>("/v1/tenants", { query: { org }, signal: ctx.signal }),
    api.json<Inspector>("/v1/inspector", { signal: ctx.signal }).catch((err: unknown) => err),
  ]);
  const inspector = inspected instanceof Error ? undefined : (inspected as Inspector);
  const byId = new Map<string, { stored?: StoredTenant; live?: InspectedTenant }>();
  for (const t of stored.tenants) byId.set(t.tenant, { stored: t });
  for (const t of inspector?.tenants ?? []) {
    if (org !== undefined && !t.tenant.startsWith(`${org}/`)) continue;
    byId.set(t.tenant, { ...byId.get(t.tenant), live: t });
  }
  const records = (inspector?.conflicts ?? []).filter((c) => org === undefined || c.tenant.startsWith(`${org}/`));
  const conflicts = new Map<string, number>();
  for (const c of records) conflicts.set(c.tenant, (conflicts.get(c.tenant) ?? 0) + 1);
  const ids = [...byId.keys()].sort();
  const totalSize = stored.tenants.reduce((n, t) => n + t.size, 0);
  // The inspector reports its first tenants only; the listing knows every stored one's residency.
  const residentOf = (id: string) => byId.get(id)?.live?.resident ?? byId.get(id)?.stored?.resident ?? false;
  const residentCount = ids.filter(residentOf).length;
  const conflictCount = [...conflicts.values()].reduce((a, b) => a + b, 0);

  const filter = h("input", {
    type: "search",
    class: "filter",
    placeholder: "filter tenants",
    "aria-label": "filter tenants",
  });
  const rows = ids.map((id) => {
    const { stored: s, live } = byId.get(id) ?? {};
    const lagMs = live?.lagMs ?? s?.lagMs;
    const lag =
      lagMs !== undefined
        ? lagMs === 0
          ? pill("up to date", "ok")
          : pill(`${formatLag(lagMs)} behind`, lagMs > 10_000 ? "bad" : "warn")
        : live?.dirtyChanges
          ? `${live.dirtyChanges} change(s) not checkpointed`
          : "-";
    const n = conflicts.get(id) ?? 0;
    return [
      h("a", { href: href("tenant", id), class: "mono" }, id),
      live?.scope ?? s?.scope ?? "",
      s === undefined ? h("span", { class: "muted" }, "not stored yet") : formatBytes(s.size),
      residentOf(id) ? pill("resident", "ok") : pill("idle"),
      s === undefined ? "-" : h("span", { title: formatTime(s.lastModified) }, formatAgo(s.lastModified)),
      lag,
      n > 0 ? pill(`${n} conflict(s)`, "bad") : pill("none"),
    ];
  });
  const tableEl = table(
    ["Tenant", "Scope", "Size", "Resident", "Last published", "Replication lag", "Conflicts"],
    rows,
    everyOrg ? "no tenants yet" : "no tenants in this org yet",
    { id: "tenants", class: "data" },
  );
  filter.addEventListener("input", () => {
    const q = filter.value.trim();
    for (const tr of tableEl.tBodies[0]?.rows ?? []) tr.hidden = q !== "" && !(tr.textContent ?? "").includes(q);
  });
  const open = h("input", {
    placeholder: `${org ?? ctx.session.org}/users/<user>`,
    "aria-label": "tenant id",
    class: "mono",
  });
  const openForm = h("form", { class: "inline" }, open, h("button", { type: "submit" }, "Open tenant"));
  openForm.addEventListener("submit", (e) => {
    e.preventDefault();
    if (open.value.trim() !== "") ctx.go("tenant", open.value.trim());
  });
  return h(
    "div",
    null,
    pageHeader(
      "Tenants",
      everyOrg ? "every org" : `org ${org}`,
      operator
        ? h(
            "a",
            { href: everyOrg ? href("tenants") : href("tenants", "all"), class: "button ghost", id: "every-org" },
            everyOrg ? `only ${ctx.session.org}` : "every org",
          )
        : null,
      openForm,
    ),
    h(
      "div",
      { class: "stats" },
      stat("tenants", String(ids.length)),
      stat("stored size", formatBytes(totalSize)),
      stat("resident", String(residentCount)),
      stat("conflicts", String(conflictCount), conflictCount > 0 ? "bad" : undefined),
    ),
    inspector === undefined ? errorBox(inspected) : null,
    card(h("span", null, "All tenants ", filter), tableEl),
    records.length === 0
      ? null
      : card(
          "Conflict records",
          h(
            "p",
            { class: "subtitle" },
            "Writes another writer overtook, kept aside on this server's disk (see storeroom tenants conflicts).",
          ),
          table(
            ["Tenant", "Reason", "Recorded", "Unpublished transactions", "Record"],
            records.map((c) => [
              h("a", { href: href("tenant", c.tenant), class: "mono" }, c.tenant),
              pill(c.reason, "bad"),
              h("span", { title: formatTime(c.time) }, formatAgo(c.time)),
              c.unpublishedTransactions === null ? "unknown" : String(c.unpublishedTransactions),
              h("span", { class: "mono muted" }, c.id),
            ]),
            "",
            { id: "conflicts", class: "data" },
          ),
        ),
  );
}

function formatLag(ms: number): string {
  return ms < 1000
    ? `${Math.round(ms)} ms`
    : ms < 120_000
      ? `${(ms / 1000).toFixed(1)} s`
      : `${Math.round(ms / 60_000)} min`;
}

function stat(label: string, value: string, tone?: string): HTMLElement {
  return h(
    "div",
    { class: `stat ${tone ?? ""}` },
    h("div", { class: "value" }, value),
    h("div", { class: "label" }, label),
  );
}
