import { ApiError, type Query, seg } from "../api.js";
import { formatTime, h, mount, pill } from "../dom.js";
import { href, type PageContext } from "../session.js";
import { actionButton, card, confirmButton, errorBox, pageHeader, statusLine } from "../ui.js";
import { hexDump, prettyJson, preview, suggestedView, type ValueView } from "../value-format.js";

interface GroupCount {
  group: string;
  count: number;
}
interface Item {
  key: string;
  value: string;
  version?: string | number;
  expiresAt?: number | null;
}
interface StateEvent {
  type: "set" | "delete" | "delete_group";
  group: string;
  key?: string;
  value?: string;
  timestamp: number;
}

const pageSize = 100;

/** "in 5 min" for an expiry time. */
function expiresIn(at: number): string {
  const s = Math.max(0, Math.round((at - Date.now()) / 1000));
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`;
}

/**
 * One tenant's state: groups and keys searched by prefix (paged), a value (text, pretty JSON
 * or hex) to edit (conditional on the version shown), delete or give a TTL, and the group's
 * live changes over Server-Sent Events (resumed after a drop with the last event id).
 */
export async function tenantPage(ctx: PageContext): Promise<Node> {
  const { api, admin, ownTenant } = ctx.session;
  const [tenant = ownTenant, group, initialKey] = ctx.params;
  // An admin acts on any tenant of its org through `?tenant=`; a plain token only has its own.
  const scope: Query = admin ? { tenant } : {};
  const statePath = (...names: string[]) => `/v1/state${names.map((n) => `/${seg(n)}`).join("")}`;
  let onSearch = () => {};

  const groupsBox = h("div", { class: "list", id: "groups" });
  const search = h("input", {
    type: "search",
    id: "prefix",
    placeholder: group === undefined ? "group prefix" : "key prefix",
    "aria-label": "search by prefix",
  });
  const loadGroups = async () => {
    try {
      const res = await api.json<{ total: number; groups: GroupCount[] }>("/v1/state", {
        query: { ...scope, prefix: group === undefined ? search.value : "", limit: 1000 },
        signal: ctx.signal,
      });
      mount(
        groupsBox,
        res.groups.length === 0 ? h("p", { class: "empty" }, "no groups") : null,
        res.groups.map((g) =>
          h(
            "a",
            { href: href("tenant", tenant, g.group), class: g.group === group ? "item active" : "item" },
            h("span", { class: "mono key", title: g.group }, g.group),
            h("span", { class: "count" }, String(g.count)),
          ),
        ),
        res.total > res.groups.length
          ? h("p", { class: "empty" }, `${res.total - res.groups.length} more: narrow the prefix`)
          : null,
      );
    } catch (err) {
      if (!ctx.signal.aborted) mount(groupsBox, errorBox(err));
    }
  };
  let searchTimer: ReturnType<typeof setTimeout> | undefined;
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => onSearch(), 150);
  });
  onSearch = () => void loadGroups();
  await loadGroups();

  const newKeyForm = (() => {
    const g = h("input", { placeholder: "group", "aria-label": "new group", value: group ?? "", class: "mono" });
    const k = h("input", { placeholder: "key", "aria-label": "new key", class: "mono" });
    const form = h("form", { class: "stack" }, g, k, h("button", { type: "submit" }, "New key"));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      if (g.value !== "" && k.value !== "") ctx.go("tenant", tenant, g.value, k.value);
    });
    return form;
  })();

  const header = pageHeader(
    tenant,
    h("span", null, admin ? h("a", { href: href("tenants") }, "Tenants") : "Your data", group ? ` / ${group}` : ""),
  );
  const addKey = h("details", null, h("summary", null, "Add a key"), newKeyForm);
  const layout = (...columns: Node[]) => h("div", null, header, h("div", { class: "browser" }, ...columns));
  if (group === undefined) {
    return layout(card("Groups", search, groupsBox, addKey), card("Keys", h("p", { class: "empty" }, "pick a group")));
  }

  // Keys of the group, filtered by key prefix on the server.
  const keysBox = h("div", { class: "list", id: "keys" });
  const pager = h("div", { class: "pager" });
  const items = new Map<string, Item>();
  let offset = 0;
  let total = 0;
  // The prefix the shown page was listed with: `total` counts the keys under it.
  let listedPrefix = "";
  let selected = initialKey;
  const keyItem = (item: Item) =>
    h(
      "a",
      {
        href: href("tenant", tenant, group, item.key),
        class: item.key === selected ? "item active" : "item",
        "data-key": item.key,
      },
      h("span", { class: "mono key", title: item.key }, item.key),
      item.expiresAt ? pill(`ttl ${expiresIn(item.expiresAt)}`, "warn") : null,
      h("span", { class: "preview" }, preview(item.value, 40)),
    );
  const renderKeys = () => {
    const entries = [...items.values()]
      .filter((i) => i.key.startsWith(search.value))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    mount(keysBox, entries.length === 0 ? h("p", { class: "empty" }, "no keys") : entries.map(keyItem));
    mount(
      pager,
      h("span", { class: "muted" }, total === 0 ? "" : `${offset + 1}-${offset + items.size} of ${total}`),
      offset > 0 ? actionButton("Previous", () => loadKeys(Math.max(0, offset - pageSize)), { class: "ghost" }) : null,
      offset + pageSize < total ? actionButton("Next", () => loadKeys(offset + pageSize), { class: "ghost" }) : null,
    );
  };
  const loadKeys = async (from: number) => {
    const prefix = search.value;
    const page = await api.json<{ total: number; items: Item[] }>(statePath(group), {
      query: { ...scope, prefix, offset: from, limit: pageSize },
      signal: ctx.signal,
    });
    offset = from;
    total = page.total;
    listedPrefix = prefix;
    items.clear();
    for (const item of page.items) items.set(item.key, item);
    renderKeys();
  };
  onSearch = () => void loadKeys(0).catch((err: unknown) => mount(keysBox, errorBox(err)));
  await loadKeys(0);
  // A key written or deleted while the page is open (live, or saved here) changes the list and
  // its total together. A new key joins the list at once only when the page holds every key
  // under the prefix (it cannot tell which page a key belongs on otherwise); the reload that
  // follows places it, refreshes the TTLs (events carry none) and settles the total.
  const listSet = (item: Item) => {
    if (!item.key.startsWith(listedPrefix)) return;
    if (items.has(item.key)) items.set(item.key, item);
    else if (offset === 0 && items.size === total && total < pageSize) {
      items.set(item.key, item);
      total++;
    }
  };
  const listDelete = (key: string) => {
    if (items.delete(key)) total = Math.max(0, total - 1);
  };
  let reloading = false;
  let reloadAgain = false;
  const reloadKeys = async () => {
    if (reloading) {
      reloadAgain = true;
      return;
    }
    reloading = true;
    try {
      do {
        reloadAgain = false;
        await loadKeys(offset).catch(() => undefined);
      } while (reloadAgain && !ctx.signal.aborted);
    } finally {
      reloading = false;
    }
  };
  const keysStatus = statusLine();
  const deleteGroup = confirmButton(
    "Delete group",
    async () => {
      await api.request(statePath(group), { method: "DELETE", query: scope });
      ctx.go("tenant", tenant);
    },
    { status: keysStatus, testid: "delete-group" },
  );
  deleteGroup.classList.add("small");

  // The value editor.
  const editorBox = h("div", { id: "value" });
  let current:
    | { key: string; notice: HTMLElement; dirty: () => boolean; replace: (value: string, etag?: string) => void }
    | undefined;
  const showValue = async (key: string | undefined) => {
    selected = key;
    for (const a of keysBox.querySelectorAll<HTMLElement>("a.item"))
      a.classList.toggle("active", a.dataset.key === key);
    current = undefined;
    if (key === undefined) return mount(editorBox, h("p", { class: "empty" }, "pick a key"));
    let value = "";
    let etag: string | undefined;
    let expiresAt: number | undefined;
    try {
      const res = await api.request(statePath(group, key), {
        query: scope,
        signal: ctx.signal,
        headers: { accept: "text/plain" },
      });
      value = await res.text();
      etag = res.headers.get("etag") ?? undefined;
      const expires = res.headers.get("x-expires-at");
      expiresAt = expires === null ? undefined : Number(expires);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) return mount(editorBox, errorBox(err));
    }
    mount(editorBox, valueEditor(key, value, etag, expiresAt));
  };
  const valueEditor = (key: string, value: string, etag: string | undefined, expiresAt: number | undefined): Node => {
    const exists = etag !== undefined;
    const status = statusLine();
    const area = h("textarea", { id: "editor", spellcheck: false, "aria-label": "value", rows: 14 });
    area.value = value;
    let original = value;
    let version = etag;
    const view = h("pre", { class: "view", id: "view" });
    const tabs = h("div", { class: "tabs", role: "tablist" });
    const meta = h("div", { class: "value-meta muted", id: "value-meta" });
    const showMeta = (at: number | undefined) =>
      mount(
        meta,
        version === undefined ? "not stored yet" : `version ${version.replace(/"/g, "")}`,
        at === undefined ? null : h("span", null, " · ", pill(`expires in ${expiresIn(at)}`, "warn")),
      );
    let mode: ValueView | "edit" = exists ? suggestedView(value) : "edit";
    const setMode = (next: ValueView | "edit") => {
      mode = next;
      const text = area.value;
      view.textContent =
        mode === "json" ? (prettyJson(text) ?? "not valid JSON") : mode === "hex" ? hexDump(text) : text;
      view.hidden = mode === "edit";
      area.hidden = mode !== "edit";
      for (const b of tabs.querySelectorAll<HTMLElement>("button"))
        b.classList.toggle("active", b.dataset.mode === mode);
    };
    for (const m of ["text", "json", "hex", "edit"] as const) {
      tabs.appendChild(
        h(
          "button",
          { type: "button", "data-mode": m, class: "tab", onclick: () => setMode(m) },
          m === "edit" ? "Edit" : m.toUpperCase(),
        ),
      );
    }
    const ttl = h("input", {
      type: "number",
      min: 1,
      step: 1,
      id: "ttl",
      placeholder: "none",
      "aria-label": "TTL seconds",
      value: expiresAt === undefined ? "" : String(Math.max(1, Math.ceil((expiresAt - Date.now()) / 1000))),
    });
    const notice = h("div", { class: "notice", hidden: true });
    const save = actionButton(
      "Save",
      async () => {
        const seconds = ttl.value === "" ? undefined : Number(ttl.value);
        // Conditional on the version shown: a change made meanwhile answers 412 VERSION_CONFLICT.
        const res = await api.request(statePath(group, key), {
          method: "PUT",
          query: { ...scope, ttl: seconds === undefined ? undefined : Math.round(seconds * 1000) },
          body: area.value,
          headers: {
            "content-type": "text/plain; charset=utf-8",
            ...(version === undefined ? { "if-none-match": "*" } : { "if-match": version }),
          },
        });
        version = res.headers.get("etag") ?? version;
        original = area.value;
        const at = seconds === undefined ? undefined : Date.now() + seconds * 1000;
        listSet({ key, value: area.value, expiresAt: at ?? null });
        renderKeys();
        notice.hidden = true;
        showMeta(at);
        status.ok(seconds === undefined ? "saved" : `saved, expires in ${seconds} s`);
        setMode(suggestedView(area.value));
      },
      { class: "primary", status, testid: "save" },
    );
    const remove = confirmButton(
      "Delete",
      async () => {
        await api.request(statePath(group, key), {
          method: "DELETE",
          query: scope,
          headers: version === undefined ? {} : { "if-match": version },
        });
        listDelete(key);
        renderKeys();
        history.replaceState(null, "", href("tenant", tenant, group));
        await showValue(undefined);
      },
      { status, testid: "delete" },
    );
    current = {
      key,
      notice,
      dirty: () => area.value !== original,
      replace(next, nextVersion) {
        area.value = next;
        original = next;
        if (nextVersion !== undefined) version = nextVersion;
        showMeta(undefined);
        setMode(mode === "edit" ? suggestedView(next) : mode);
      },
    };
    showMeta(expiresAt);
    setMode(mode);
    return h(
      "div",
      null,
      h(
        "div",
        { class: "value-head" },
        h("h3", { class: "mono", id: "value-key" }, key),
        exists ? null : pill("new", "warn"),
        tabs,
      ),
      meta,
      notice,
      view,
      area,
      h(
        "div",
        { class: "editor-actions" },
        save,
        h("label", { class: "ttl", title: "seconds until the value expires; empty: it never does" }, "TTL ", ttl, " s"),
        exists ? remove : null,
      ),
      status,
    );
  };

  // Live changes of the group; a dropped stream reconnects and resumes after the last event.
  const live = h("ol", { class: "events", id: "events" });
  const liveState = pill("connecting", "warn");
  liveState.id = "live-state";
  const setLive = (text: string, tone: "ok" | "bad" | "warn" | "muted") => {
    liveState.textContent = text;
    liveState.className = `pill ${tone}`;
  };
  const onChange = (event: StateEvent, id: string | undefined) => {
    if (event.type === "set" && event.key !== undefined) listSet({ key: event.key, value: event.value ?? "" });
    if (event.type === "delete" && event.key !== undefined) listDelete(event.key);
    if (event.type === "delete_group") {
      items.clear();
      total = 0;
    }
    renderKeys();
    void reloadKeys();
    live.prepend(
      h(
        "li",
        null,
        h("span", { class: "time" }, formatTime(event.timestamp)),
        pill(event.type, event.type === "set" ? "ok" : "bad"),
        h("span", { class: "mono ev-key", title: event.key ?? group }, event.key ?? group),
        event.value === undefined ? null : h("span", { class: "ev-preview" }, preview(event.value, 50)),
      ),
    );
    while (live.children.length > 50) live.lastElementChild?.remove();
    if (current !== undefined && (event.key === current.key || event.type === "delete_group")) {
      if (event.type !== "set" || event.value === undefined) {
        void showValue(current.key);
      } else if (current.dirty()) {
        current.notice.hidden = false;
        current.notice.textContent = "This value changed on the server while you were editing; saving now will fail.";
      } else {
        current.replace(event.value, id === undefined ? undefined : `"${id}"`);
      }
    }
  };
  let lastEventId: string | undefined;
  const watch = async () => {
    for (let attempt = 0; !ctx.signal.aborted; attempt++) {
      try {
        setLive("live", "ok");
        await api.stream(
          `${statePath(group)}/events`,
          (e) => {
            if (e.id !== undefined) lastEventId = e.id;
            if (e.event === "reset") {
              live.prepend(h("li", null, pill("reset", "warn"), "missed changes: reloaded"));
              void loadKeys(offset);
            } else if (e.event === "set" || e.event === "delete" || e.event === "delete_group") {
              attempt = 0;
              onChange(JSON.parse(e.data) as StateEvent, e.id);
            }
          },
          { query: { ...scope, lastEventId }, signal: ctx.signal },
        );
        if (ctx.signal.aborted) return;
        setLive("reconnecting", "warn");
      } catch (err) {
        if (ctx.signal.aborted) return;
        setLive("reconnecting", "bad");
        if (attempt === 0) live.prepend(h("li", null, errorBox(err)));
      }
      await new Promise((r) => setTimeout(r, Math.min(1000 * 2 ** attempt, 15_000)));
    }
  };
  void watch();

  keysBox.addEventListener("click", (e) => {
    const a = (e.target as Element).closest<HTMLAnchorElement>("a.item");
    if (a?.dataset.key === undefined) return;
    e.preventDefault();
    history.replaceState(null, "", href("tenant", tenant, group, a.dataset.key));
    void showValue(a.dataset.key);
  });
  await showValue(selected);

  return layout(
    card("Groups", groupsBox, addKey),
    card(
      h("span", null, "Keys in ", h("span", { class: "mono" }, group), deleteGroup),
      search,
      keysStatus,
      keysBox,
      pager,
    ),
    h("div", { class: "column" }, card("Value", editorBox), card(h("span", null, "Live changes ", liveState), live)),
  );
}
