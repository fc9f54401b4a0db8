/** Anything {@link h} accepts as a child; `null`, `undefined` and `false` render nothing. */
export type Child = Node | string | number | null | undefined | false | Child[];

type Handler = (event: Event) => void;
/** Attributes (strings, booleans), `on<event>` handlers, and `value`/`checked` set as properties. */
export type Props = Record<string, string | number | boolean | Handler | null | undefined>;

/** Builds an element: `h("button", { class: "primary", onclick: save }, "Save")`. Text is never parsed as HTML. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props?: Props | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "value" || name === "checked") (el as unknown as Record<string, unknown>)[name] = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

/** Appends children (flattening arrays) to `parent`. */
export function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the children of `parent`. */
export function mount(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, children);
}

/** A table with a header row; `rows` empty shows `empty` across the table. */
export function table(headers: string[], rows: Child[][], empty = "nothing here yet", props: Props = {}) {
  return h(
    "table",
    props,
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        headers.map((title) => h("th", null, title)),
      ),
    ),
    h(
      "tbody",
      null,
      rows.length === 0
        ? h("tr", null, h("td", { colspan: headers.length, class: "empty" }, empty))
        : rows.map((cells) =>
            h(
              "tr",
              null,
              cells.map((c) => h("td", null, c)),
            ),
          ),
    ),
  );
}

/** Bytes as "1.5 MB". */
export function formatBytes(n: number | undefined): string {
  if (n === undefined) return "-";
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = n;
  let unit = -1;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** A time as "12:04:05" today, else "2026-01-02 12:04". */
export function formatTime(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return "-";
  const d = new Date(ms);
  const iso = d.toISOString();
  const sameDay = iso.slice(0, 10) === new Date().toISOString().slice(0, 10);
  return sameDay ? iso.slice(11, 19) : `${iso.slice(0, 10)} ${iso.slice(11, 16)}`;
}

/** "3 s ago", "5 min ago". */
export function formatAgo(ms: number | undefined, now = Date.now()): string {
  if (ms === undefined || !Number.isFinite(ms)) return "-";
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86_400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86_400)} d ago`;
}

/** A status pill: `pill("connected", "ok")`. */
export function pill(text: string, tone: "ok" | "bad" | "warn" | "muted" = "muted"): HTMLSpanElement {
  return h("span", { class: `pill ${tone}` }, text);
}
