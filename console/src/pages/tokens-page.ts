import { formatTime, h, mount, pill, table } from "../dom.js";
import type { PageContext } from "../session.js";
import { actionButton, card, confirmButton, errorBox, pageHeader, statusLine } from "../ui.js";

interface TokenRecord {
  id: string;
  orgId: string;
  userId?: string;
  roles: string[];
  createdAt: string;
  expiresAt?: string;
  label?: string;
  /** Set by the server on the token this very listing was requested with. */
  current?: boolean;
}

/** The org's tokens (`/v1/tokens`): list, create (the secret shown once), revoke. */
export async function tokensPage(ctx: PageContext): Promise<Node> {
  const { api, org, operator } = ctx.session;
  const listBox = h("div", null);
  const listStatus = statusLine();
  const load = async () => {
    try {
      const { tokens } = await api.json<{ tokens: TokenRecord[] }>("/v1/tokens", {
        query: { org },
        signal: ctx.signal,
      });
      mount(
        listBox,
        table(
          ["Id", "User", "Roles", "Label", "Created", "Expires", ""],
          tokens.map((t) => [
            h("span", { class: "mono" }, t.id, t.current === true ? pill("this session", "warn") : null),
            t.userId ?? h("span", { class: "muted" }, "(org)"),
            t.roles.length === 0
              ? h("span", { class: "muted" }, "none")
              : t.roles.map((r) => pill(r, r === "operator" ? "bad" : "muted")),
            t.label ?? "",
            formatTime(Date.parse(t.createdAt)),
            t.expiresAt === undefined ? h("span", { class: "muted" }, "never") : formatTime(Date.parse(t.expiresAt)),
            confirmButton(
              "Revoke",
              async () => {
                await api.request(`/v1/tokens/${encodeURIComponent(t.id)}`, { method: "DELETE" });
                listStatus.ok(`token ${t.id} revoked: it is refused from the next request on`);
                await load();
              },
              { status: listStatus, testid: `revoke-${t.id}` },
            ),
          ]),
          "no tokens",
          { id: "tokens", class: "data" },
        ),
      );
    } catch (err) {
      if (!ctx.signal.aborted) mount(listBox, errorBox(err));
    }
  };

  const user = h("input", { id: "token-user", placeholder: "user id (empty: the org itself)", class: "mono" });
  const label = h("input", { id: "token-label", placeholder: "label, e.g. ada's laptop" });
  const adminRole = h("input", { type: "checkbox", id: "token-admin" });
  const operatorRole = h("input", { type: "checkbox", id: "token-operator" });
  const expires = h(
    "select",
    { id: "token-expires", "aria-label": "expires" },
    h("option", { value: "" }, "never expires"),
    ["1d", "7d", "30d", "90d"].map((d) => h("option", { value: d, selected: d === "30d" }, `expires in ${d}`)),
  );
  const created = h("div", { id: "token-created" });
  const createStatus = statusLine();
  const create = actionButton(
    "Create token",
    async () => {
      const roles = [...(adminRole.checked ? ["admin"] : []), ...(operatorRole.checked ? ["operator"] : [])];
      const res = await api.json<TokenRecord & { token: string }>("/v1/tokens", {
        method: "POST",
        json: {
          orgId: org,
          ...(user.value.trim() === "" ? {} : { userId: user.value.trim() }),
          roles,
          ...(expires.value === "" ? {} : { expiresIn: expires.value }),
          ...(label.value.trim() === "" ? {} : { label: label.value.trim() }),
        },
      });
      const secret = h("code", { class: "secret", id: "new-token" }, res.token);
      mount(
        created,
        h(
          "div",
          { class: "once" },
          h("strong", null, "Copy this token now: it is not shown again."),
          secret,
          actionButton("Copy", () => navigator.clipboard.writeText(res.token), { class: "ghost" }),
        ),
      );
      await load();
    },
    { class: "primary", status: createStatus, testid: "create-token" },
  );
  await load();
  return h(
    "div",
    null,
    pageHeader("Tokens", `org ${org}`),
    card(
      "New token",
      h(
        "div",
        { class: "form-grid" },
        h("label", null, "User", user),
        h("label", null, "Label", label),
        h("label", null, "Expiry", expires),
        h(
          "div",
          { class: "roles" },
          h("label", { class: "check" }, adminRole, " admin (manages the org)"),
          operator ? h("label", { class: "check" }, operatorRole, " operator (every org)") : null,
        ),
      ),
      create,
      createStatus,
      created,
    ),
    card("Tokens", listStatus, listBox),
  );
}
