import { Api, ApiError } from "./api.js";
import { h, mount } from "./dom.js";
import { busPage } from "./pages/bus-page.js";
import { filesPage } from "./pages/files-page.js";
import { healthPage } from "./pages/health-page.js";
import { tenantPage } from "./pages/tenant-page.js";
import { tenantsPage } from "./pages/tenants-page.js";
import { tokensPage } from "./pages/tokens-page.js";
import { href, type Identity, type PageContext, type Session } from "./session.js";
import { errorBox } from "./ui.js";

const tokenKey = "storeroom-token";
const orgKey = "storeroom-org";

type Page = (ctx: PageContext) => Promise<Node>;
interface Route {
  path: string;
  title: string;
  page: Page;
  adminOnly: boolean;
  nav: boolean;
}

const routes: Route[] = [
  { path: "tenants", title: "Tenants", page: tenantsPage, adminOnly: true, nav: true },
  { path: "tenant", title: "Data", page: tenantPage, adminOnly: false, nav: false },
  { path: "files", title: "Files", page: filesPage, adminOnly: false, nav: true },
  { path: "bus", title: "Bus", page: busPage, adminOnly: true, nav: true },
  { path: "tokens", title: "Tokens", page: tokensPage, adminOnly: true, nav: true },
  { path: "health", title: "Health", page: healthPage, adminOnly: true, nav: true },
];

const root = document.getElementById("app") as HTMLElement;
let leave: AbortController | undefined;
/** The signed-in session, until it signs out or its token is refused. */
let active: Session | undefined;

/** A hash segment decoded, or left as it is when it is not valid percent-encoding. */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function signInForm(message?: unknown): void {
  leave?.abort();
  const input = h("input", {
    id: "token",
    type: "password",
    name: "token",
    autocomplete: "off",
    placeholder: "sr_...",
    required: true,
    "aria-label": "token",
  });
  const form = h(
    "form",
    { class: "signin card", id: "signin" },
    h("div", { class: "brand big" }, h("span", { class: "logo" }, "▣"), " storeroom"),
    h("p", { class: "subtitle" }, "Sign in with a token. It stays in this tab only (sessionStorage)."),
    message === undefined ? null : errorBox(message),
    h("label", null, "Token", input),
    h("button", { type: "submit", class: "primary" }, "Sign in"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(tokenKey, input.value.trim());
    void start();
  });
  mount(root, h("main", { class: "signin-page" }, form));
  input.focus();
}

async function start(): Promise<void> {
  // A link printed by `storeroom serve` carries the token in the fragment (never sent to the
  // server); it moves to sessionStorage and leaves the address bar at once.
  const fragment = new URLSearchParams(location.hash.slice(1));
  const fromFragment = fragment.get("token");
  if (fromFragment) {
    sessionStorage.setItem(tokenKey, fromFragment);
    history.replaceState(null, "", location.pathname);
  }
  const token = sessionStorage.getItem(tokenKey);
  if (!token) return signInForm();
  // A token revoked or expired while the console is open: back to the sign-in form (which ends
  // the page's refreshes), and the token is forgotten. A late answer to an earlier session's
  // request changes nothing.
  const api: Api = new Api(token, (err) => {
    if (active?.api !== api) return;
    active = undefined;
    sessionStorage.removeItem(tokenKey);
    window.onhashchange = null;
    signInForm(err);
  });
  let identity: Identity;
  try {
    identity = (await api.json<{ identity: Identity }>("/v1/whoami")).identity;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) sessionStorage.removeItem(tokenKey);
    return signInForm(err);
  }
  const operator = identity.roles.includes("operator");
  const signedIn: Session = {
    api,
    identity,
    operator,
    admin: operator || identity.roles.includes("admin"),
    org: (operator && sessionStorage.getItem(orgKey)) || identity.orgId,
    ownTenant: identity.userId === undefined ? `${identity.orgId}/org` : `${identity.orgId}/users/${identity.userId}`,
  };
  active = signedIn;
  window.onhashchange = () => void render(signedIn);
  await render(signedIn);
}

function signOut(): void {
  active = undefined;
  sessionStorage.removeItem(tokenKey);
  sessionStorage.removeItem(orgKey);
  window.onhashchange = null;
  history.replaceState(null, "", location.pathname);
  signInForm();
}

async function orgPicker(session: Session): Promise<HTMLElement | null> {
  if (!session.operator) return null;
  const orgs = new Set([session.org, session.identity.orgId]);
  // Orgs with stored tenants, and with tenants open on this server that are not stored yet.
  const [stored, live] = await Promise.allSettled([
    session.api.json<{ tenants: { orgId: string }[] }>("/v1/tenants"),
    session.api.json<{ tenants: { tenant: string }[] }>("/v1/inspector"),
  ]);
  if (stored.status === "fulfilled") for (const t of stored.value.tenants) orgs.add(t.orgId);
  if (live.status === "fulfilled") for (const t of live.value.tenants) orgs.add(t.tenant.split("/")[0] ?? "");
  orgs.delete("");
  const input = h("input", { id: "org", list: "org-list", value: session.org, "aria-label": "org", class: "mono" });
  const choose = () => {
    const org = input.value.trim();
    if (org === "" || org === session.org) return;
    session.org = org;
    sessionStorage.setItem(orgKey, org);
    void render(session);
  };
  input.addEventListener("change", choose);
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") choose();
  });
  return h(
    "label",
    { class: "org-picker", title: "every org is open to an operator: pick or type one" },
    "org ",
    input,
    h(
      "datalist",
      { id: "org-list" },
      [...orgs].sort().map((o) => h("option", { value: o })),
    ),
  );
}

async function render(session: Session): Promise<void> {
  leave?.abort();
  const controller = new AbortController();
  leave = controller;
  const [name = "", ...params] = location.hash.replace(/^#\/?/, "").split("/").map(decodeSegment);
  const route = routes.find((r) => r.path === name && (session.admin || !r.adminOnly));
  if (route === undefined) {
    location.replace(session.admin ? href("tenants") : href("tenant", session.ownTenant));
    return;
  }
  const who = session.identity;
  const picker = await orgPicker(session);
  // Its token may have been refused meanwhile (the sign-in form is showing), or the page left.
  if (controller.signal.aborted) return;
  const nav = h(
    "nav",
    { class: "sidebar" },
    h("div", { class: "brand" }, h("span", { class: "logo" }, "▣"), " storeroom"),
    session.admin
      ? null
      : h("a", { href: href("tenant", session.ownTenant), class: name === "tenant" ? "active" : "" }, "My data"),
    routes
      .filter((r) => r.nav && (session.admin || !r.adminOnly))
      .map((r) =>
        h(
          "a",
          { href: href(r.path), class: r.path === name || (r.path === "tenants" && name === "tenant") ? "active" : "" },
          r.title,
        ),
      ),
  );
  const top = h(
    "div",
    { class: "topbar" },
    picker,
    h(
      "span",
      { class: "whoami", id: "whoami" },
      who.userId === undefined ? who.orgId : `${who.orgId}/${who.userId}`,
      who.roles.map((r) => h("span", { class: "pill muted" }, r)),
    ),
    h("button", { type: "button", class: "ghost", id: "signout", onclick: signOut }, "Sign out"),
  );
  const content = h("main", { class: "content", id: "content" }, h("p", { class: "loading" }, "loading..."));
  mount(root, h("div", { class: "shell" }, nav, h("div", { class: "main" }, top, content)));
  document.title = `${route.title} - storeroom`;
  const ctx: PageContext = {
    session,
    params: params.length > 0 || route.path !== "tenant" || session.admin ? params : [session.ownTenant],
    signal: controller.signal,
    every(ms, fn) {
      const timer = setInterval(fn, ms);
      controller.signal.addEventListener("abort", () => clearInterval(timer));
    },
    go(...segments) {
      location.hash = href(...segments);
    },
  };
  try {
    const page = await route.page(ctx);
    if (!controller.signal.aborted) mount(content, page);
  } catch (err) {
    if (controller.signal.aborted) return;
    if (err instanceof ApiError && err.status === 401) return signInForm(err);
    mount(content, errorBox(err));
  }
}

void start();
