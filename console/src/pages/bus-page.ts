import { formatAgo, formatBytes, formatTime, h, mount, pill, table } from "../dom.js";
import type { PageContext } from "../session.js";
import { actionButton, card, errorBox, pageHeader, statusLine } from "../ui.js";

interface Peer {
  name: string;
  connected: boolean;
  lastSeen: number;
  firstSeen: number;
  backlog: number;
}
interface TailMessage {
  id: string;
  from: string;
  to: string;
  size: number;
  ts: number;
  delivered: boolean;
  acked: boolean;
}
interface Audit {
  orgId: string;
  rows: number;
  intact: boolean;
  break?: { seq: number; detail: string };
}

/** The org's bus: peers (connected, last seen, backlog), a live tail of messages, the audit chain. */
export async function busPage(ctx: PageContext): Promise<Node> {
  const { api, org } = ctx.session;
  const query = { org };
  const peersBox = h("div", null);
  const tailBox = h("div", null);
  const auditBox = h("div", { id: "audit" });
  const seen = new Set<string>();
  let first = true;

  const loadPeers = async () => {
    try {
      const { peers, maxBacklog } = await api.json<{ peers: Peer[]; maxBacklog: number }>("/v1/bus/peers", {
        query,
        signal: ctx.signal,
      });
      mount(
        peersBox,
        table(
          ["Peer", "Status", "Last seen", "First seen", "Backlog"],
          peers.map((p) => [
            h("span", { class: "mono" }, p.name),
            p.connected ? pill("connected", "ok") : pill("offline"),
            p.connected ? "now" : h("span", { title: formatTime(p.lastSeen) }, formatAgo(p.lastSeen)),
            formatTime(p.firstSeen),
            p.backlog >= maxBacklog ? `${maxBacklog}+` : String(p.backlog),
          ]),
          "no peer has registered on this org's bus",
          { id: "peers", class: "data" },
        ),
      );
    } catch (err) {
      if (!ctx.signal.aborted) mount(peersBox, errorBox(err));
    }
  };

  const body = async (id: string, where: HTMLElement) => {
    const m = await api.json<{ envelope: string; encoding: string }>(`/v1/bus/messages/${encodeURIComponent(id)}`, {
      query,
    });
    let text = m.envelope;
    if (m.encoding === "utf8") {
      try {
        text = JSON.stringify(JSON.parse(m.envelope), null, 2);
      } catch {
        // Not JSON: shown as it is.
      }
    }
    mount(where, h("pre", { class: "view" }, m.encoding === "base64" ? `base64: ${text}` : text));
  };

  const loadTail = async () => {
    try {
      const { messages } = await api.json<{ messages: TailMessage[] }>("/v1/bus/messages", {
        query: { ...query, limit: 50 },
        signal: ctx.signal,
      });
      const rows = messages.map((m) => {
        const fresh = !first && !seen.has(m.id);
        seen.add(m.id);
        const detail = h("div", { class: "message-body" });
        return [
          h("span", { class: fresh ? "time fresh" : "time" }, formatTime(m.ts)),
          h("span", { class: "mono" }, m.id),
          h("span", { class: "mono" }, m.from),
          h("span", { class: "mono" }, m.to),
          formatBytes(m.size),
          m.acked ? pill("acked", "ok") : m.delivered ? pill("delivered", "ok") : pill("queued", "warn"),
          h(
            "span",
            null,
            actionButton("Body", () => body(m.id, detail), { class: "ghost small" }),
            detail,
          ),
        ];
      });
      first = false;
      mount(
        tailBox,
        table(["Time", "Id", "From", "To", "Size", "State", ""], rows, "no messages yet", {
          id: "tail",
          class: "data",
        }),
      );
    } catch (err) {
      if (!ctx.signal.aborted) mount(tailBox, errorBox(err));
    }
  };

  const status = statusLine();
  const showAudit = (a: Audit, checkedAt?: number) =>
    mount(
      auditBox,
      h(
        "div",
        { class: "audit-line" },
        a.intact ? pill("intact", "ok") : pill("broken", "bad"),
        h("span", null, `${a.rows} row(s)`),
        a.break ? h("span", { class: "bad-text" }, `broken at seq ${a.break.seq}: ${a.break.detail}`) : null,
        checkedAt === undefined ? null : h("span", { class: "muted" }, `verified at ${formatTime(checkedAt)}`),
      ),
    );
  const verify = actionButton(
    "Verify now",
    async () => showAudit(await api.json<Audit>("/v1/bus/audit/verify", { method: "POST", query }), Date.now()),
    { class: "primary", status, testid: "verify-audit" },
  );

  await Promise.all([loadPeers(), loadTail()]);
  ctx.every(2000, () => void loadTail());
  ctx.every(5000, () => void loadPeers());
  mount(auditBox, h("span", { class: "muted" }, "not verified in this session"));
  return h(
    "div",
    null,
    pageHeader("Bus", `org ${org}`),
    card("Peers", peersBox),
    card(
      h("span", null, "Messages ", pill("live", "ok")),
      h("p", { class: "subtitle" }, "newest first, refreshed every 2 s; bodies on demand"),
      tailBox,
    ),
    card("Audit chain", auditBox, verify, status),
  );
}
