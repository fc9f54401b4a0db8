import { ApiError, type Query, seg } from "../api.js";
import { formatTime, h, mount, pill } from "../dom.js";
import { href, type PageContext } from "../session.js";
import { actionButton, card, confirmButton, errorBox, pageHeader, statusLine } from "../ui.js";
import { hexDump, prettyJson, preview, suggestedView, type ValueView } from "../value-format.js";

interface GroupCount {
  group: string;
  count: number;
}
interface StateEvent {
  type: "set" | "delete" | "delete_group";
  group: string;
  key?: string;
  value?: string;
  timestamp: number;
}

const pageSize = 100;

/**
 * One tenant's state: groups (searched by prefix), a group's keys (paged, filtered by key
 * prefix), a value (text, pretty JSON or hex) to edit, delete or give a TTL, and the group's
 * live changes over Server-Sent Events.
 */
export async function tenantPage(ctx: PageContext): Promise<Node> {
  const { api, admin, ownTenant } = ctx.session;
  const [tenant = ownTenant, group, initialKey] = ctx.params;
  // An admin acts on any tenant of its org through `?tenant=`; a plain token only has its own.
  const scope: Query = admin ? { tenant } : {};
  const statePath = (...names: string[]) => `/v1/state${names.map((n) => `/${seg(n)}`).join("")}`;

  const groupsBox = h("div", { class: "list", id: "groups" });
  const search = h("input", {
    type: "search",
    id: "prefix",
    placeholder: "prefix",
    "aria-label": "search by prefix",
    value: "",
  });
  const loadGroups = async () => {
    try {
      const res = await api.json<{ keys: number; groups: GroupCount[] }>("/v1/state", {
        query: { ...scope, prefix: search.value },
        signal: ctx.signal,
      });
      mount(
        groupsBox,
        res.groups.length === 0 ? h("p", { class: "empty" }, "no groups") : null,
        res.groups.map((g) =>
          h(
            "a",
            { href: href("tenant", tenant, g.group), class: g.group === group ? "item active" : "item" },
            h("span", { class: "mono" }, g.group),
            h("span", { class: "count" }, String(g.count)),
          ),
        ),
      );
    } catch (err) {
      if (!ctx.signal.aborted) mount(groupsBox, errorBox(err));
    }
  };
  let filterKeys = () => {};
  search.addEventListener("input", () => {
    void loadGroups();
    filterKeys();
  });
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

  const groupsCard = card("Groups", search, groupsBox, h("details", null, h("summary", null, "Add a key"), newKeyForm));
  const header = pageHeader(
    tenant,
    h("span", null, admin ? h("a", { href: href("tenants") }, "Tenants") : "Your data", group ? ` / ${group}` : ""),
  );
  if (group === undefined) {
    return h(
      "div",
      null,
      header,
      h("div", { class: "browser" }, groupsCard, card("Keys", h("p", { class: "empty" }, "pick a group"))),
    );
  }

  // Keys of the group.
  const keysBox = h("div", { class: "list", id: "keys" });
  const pager = h("div", { class: "pager" });
  const values = new Map<string, string>();
  let offset = 0;
  let total = 0;
  let selected = initialKey;
  filterKeys = () => {
    for (const a of keysBox.querySelectorAll<HTMLElement>("a.item")) {
      a.hidden = search.value !== "" && !(a.dataset.key ?? "").startsWith(search.value);
    }
  };
  const keyItem = (key: string, value: string) =>
    h(
      "a",
      { href: href("tenant", tenant, group, key), class: key === selected ? "item active" : "item", "data-key": key },
      h("span", { class: "mono key" }, key),
      h("span", { class: "preview" }, preview(value, 40)),
    );
  const renderKeys = () => {
    const entries = [...values].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    mount(
      keysBox,
      entries.length === 0 ? h("p", { class: "empty" }, "no keys") : entries.map(([k, v]) => keyItem(k, v)),
    );
    filterKeys();
    mount(
      pager,
      h(
        "span",
        { class: "muted" },
        total === 0 ? "" : `${offset + 1}-${Math.min(offset + pageSize, total)} of ${total}`,
      ),
      offset > 0 ? actionButton("Previous", () => loadKeys(Math.max(0, offset - pageSize)), { class: "ghost" }) : null,
      offset + pageSize < total ? actionButton("Next", () => loadKeys(offset + pageSize), { class: "ghost" }) : null,
    );
  };
  const loadKeys = async (from: number) => {
    const page = await api.json<{ total: number; items: { key: string; value: string }[] }>(statePath(group), {
      query: { ...scope, offset: from, limit: pageSize },
      signal: ctx.signal,
    });
    offset = from;
    total = page.total;
    values.clear();
    for (const item of page.items) values.set(item.key, item.value);
    renderKeys();
  };
  await loadKeys(0);

  // The value editor.
  const editorBox = h("div", { id: "value" });
  const showValue = async (key: string | undefined) => {
    selected = key;
    for (const a of keysBox.querySelectorAll<HTMLElement>("a.item"))
      a.classList.toggle("active", a.dataset.key === key);
    if (key === undefined) return mount(editorBox, h("p", { class: "empty" }, "pick a key"));
    let value = "";
    let exists = true;
    try {
      value = await api.text(statePath(group, key), { query: scope, signal: ctx.signal });
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) return mount(editorBox, errorBox(err));
      exists = false;
    }
    mount(editorBox, valueEditor(key, value, exists));
  };
  let current: { key: string; notice: HTMLElement; dirty: () => boolean; replace: (value: string) => void } | undefined;
  const valueEditor = (key: string, value: string, exists: boolean): Node => {
    const status = statusLine();
    const area = h("textarea", { id: "editor", spellcheck: false, "aria-label": "value", rows: 14 });
    area.value = value;
    let original = value;
    const view = h("pre", { class: "view", id: "view" });
    const tabs = h("div", { class: "tabs", role: "tablist" });
    let mode: ValueView | "edit" = exists ? suggestedView(value) : "edit";
    const setMode = (next: ValueView | "edit") => {
      mode = next;
      const text = area.value;
      view.textContent =
        mode === "json" ? (prettyJson(text) ?? "not valid JSON") : mode === "hex" ? hexDump(text) : text;
      view.hidden = mode === "edit";
      area.hidden = mode !== "edit";
      for (const b of tabs.querySelectorAll("button")) b.classList.toggle("active", b.dataset.mode === mode);
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
      placeholder: "seconds",
      "aria-label": "TTL seconds",
    });
    const notice = h("div", { class: "notice", hidden: true });
    const save = actionButton(
      "Save",
      async () => {
        const seconds = ttl.value === "" ? undefined : Number(ttl.value);
        await api.request(statePath(group, key), {
          method: "PUT",
          query: { ...scope, ttl: seconds === undefined ? undefined : Math.round(seconds * 1000) },
          body: area.value,
          headers: { "content-type": "text/plain; charset=utf-8" },
        });
        original = area.value;
        values.set(key, area.value);
        renderKeys();
        notice.hidden = true;
        status.ok(seconds === undefined ? "saved" : `saved, expires in ${seconds} s`);
        setMode(suggestedView(area.value));
      },
      { class: "primary", status, testid: "save" },
    );
    const remove = confirmButton(
      "Delete",
      async () => {
        await api.request(statePath(group, key), { method: "DELETE", query: scope });
        values.delete(key);
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
      replace(next) {
        area.value = next;
        original = next;
        setMode(mode === "edit" ? suggestedView(next) : mode);
      },
    };
    setMode(mode);
    return h(
      "div",
      null,
      h("div", { class: "value-head" }, h("h3", { class: "mono" }, key), exists ? null : pill("new", "warn"), tabs),
      notice,
      view,
      area,
      h(
        "div",
        { class: "editor-actions" },
        save,
        h("label", { class: "ttl" }, "TTL ", ttl, " s"),
        exists ? remove : null,
      ),
      status,
    );
  };

  // Live changes of the group.
  const live = h("ol", { class: "events", id: "events" });
  const liveState = pill("connecting", "warn");
  liveState.id = "live-state";
  const onChange = (event: StateEvent) => {
    if (event.type === "set" && event.key !== undefined) values.set(event.key, event.value ?? "");
    if (event.type === "delete" && event.key !== undefined) values.delete(event.key);
    if (event.type === "delete_group") values.clear();
    renderKeys();
    live.prepend(
      h(
        "li",
        null,
        h("span", { class: "time" }, formatTime(event.timestamp)),
        pill(event.type, event.type === "set" ? "ok" : "bad"),
        h("span", { class: "mono" }, event.key ?? group),
        event.value === undefined ? null : h("span", { class: "ev-preview" }, preview(event.value, 50)),
      ),
    );
    while (live.children.length > 50) live.lastElementChild?.remove();
    if (current !== undefined && (event.key === current.key || event.type === "delete_group")) {
      if (event.type !== "set" || event.value === undefined) {
        void showValue(current.key);
      } else if (current.dirty()) {
        current.notice.hidden = false;
        current.notice.textContent = "This value changed on the server while you were editing.";
      } else {
        current.replace(event.value);
      }
    }
  };
  const watch = async () => {
    try {
      liveState.textContent = "live";
      liveState.className = "pill ok";
      await api.stream(
        `${statePath(group)}/events`,
        (e) => {
          if (e.event === "dropped") live.prepend(h("li", { class: "bad" }, "some changes were dropped; reload"));
          else onChange(JSON.parse(e.data) as StateEvent);
        },
        { query: scope, signal: ctx.signal },
      );
      if (!ctx.signal.aborted) {
        liveState.textContent = "ended";
        liveState.className = "pill muted";
      }
    } catch (err) {
      if (ctx.signal.aborted) return;
      liveState.textContent = "failed";
      liveState.className = "pill bad";
      live.prepend(h("li", null, errorBox(err)));
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

  return h(
    "div",
    null,
    header,
    h(
      "div",
      { class: "browser" },
      groupsCard,
      card(h("span", null, "Keys in ", h("span", { class: "mono" }, group)), keysBox, pager),
      h("div", { class: "column" }, card("Value", editorBox), card(h("span", null, "Live changes ", liveState), live)),
    ),
  );
}
