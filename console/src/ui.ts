import { ApiError } from "./api.js";
import { type Child, h, mount } from "./dom.js";

/** An error shown in place: its code and message. */
export function errorBox(err: unknown): HTMLElement {
  const code = err instanceof ApiError ? err.code : "ERROR";
  const message = err instanceof Error ? err.message : String(err);
  return h("div", { class: "error", role: "alert" }, h("code", { class: "code" }, code), " ", message);
}

/** A place for an action's outcome: `.show(err)` or `.ok(text)`; cleared by `.clear()`. */
export type StatusLine = HTMLElement & { show(err: unknown): void; ok(text: string): void; clear(): void };

/** Creates a {@link StatusLine}. */
export function statusLine(): StatusLine {
  const el = h("div", { class: "status-line", "aria-live": "polite" }) as unknown as StatusLine;
  el.show = (err) => mount(el, errorBox(err));
  el.ok = (text) => mount(el, h("div", { class: "ok-note" }, text));
  el.clear = () => el.replaceChildren();
  return el;
}

/**
 * A button that runs `action`, disabled while it runs; a failure goes to `status` (or a
 * box after the button).
 */
export function actionButton(
  label: string,
  action: () => Promise<unknown>,
  options: { class?: string; status?: StatusLine; title?: string; testid?: string } = {},
): HTMLButtonElement {
  const button = h("button", {
    type: "button",
    class: options.class ?? "",
    title: options.title,
    "data-testid": options.testid,
  });
  button.textContent = label;
  button.addEventListener("click", async () => {
    button.disabled = true;
    options.status?.clear();
    try {
      await action();
    } catch (err) {
      if (options.status) options.status.show(err);
      else button.after(errorBox(err));
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

/** A two-step destructive button: the first click asks "sure?", the second runs `action`. */
export function confirmButton(
  label: string,
  action: () => Promise<unknown>,
  options: { status?: StatusLine; testid?: string } = {},
): HTMLButtonElement {
  let armed = false;
  const button = actionButton(
    label,
    async () => {
      if (!armed) {
        armed = true;
        button.textContent = `Confirm ${label.toLowerCase()}`;
        button.classList.add("armed");
        setTimeout(() => {
          armed = false;
          button.textContent = label;
          button.classList.remove("armed");
        }, 4000);
        return;
      }
      armed = false;
      button.textContent = label;
      button.classList.remove("armed");
      await action();
    },
    { class: "danger", ...options },
  );
  return button;
}

/** A titled card. */
export function card(title: Child, ...children: Child[]): HTMLElement {
  return h("section", { class: "card" }, h("h2", null, title), ...children);
}

/** A page heading with an optional line under it and actions on the right. */
export function pageHeader(title: string, subtitle?: Child, ...actions: Child[]): HTMLElement {
  return h(
    "header",
    { class: "page-header" },
    h("div", null, h("h1", null, title), subtitle ? h("p", { class: "subtitle" }, subtitle) : null),
    h("div", { class: "actions" }, ...actions),
  );
}
