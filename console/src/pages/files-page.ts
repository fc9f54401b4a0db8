import type { Api, Query } from "../api.js";
import { formatAgo, formatBytes, formatTime, h, mount, pill, table } from "../dom.js";
import type { PageContext } from "../session.js";
import { actionButton, card, confirmButton, errorBox, pageHeader, statusLine } from "../ui.js";
import { hasUnfinishedUpload, uploadFile } from "../uploader.js";

interface FileRow {
  owner?: string;
  key: string;
  url: string;
  size: number;
  contentType: string;
  originalFilename: string;
  public: boolean;
  createdAt: number;
}
interface PendingUpload {
  owner?: string;
  claimId: string;
  key: string;
  size: number;
  originalFilename: string;
  partCount: number;
  expiresAt: number;
}
interface QueueRow {
  id: string;
  key: string;
  reason: string;
  attempts: number;
  owner: string;
  lastError: string;
  nextAttemptAt?: number;
  deadAt?: number;
}

/** Rows per page of the files and unfinished-uploads listings. */
const pageSize = 100;

/** Where the shown page of a cursor listing starts, the way back, and the next page's cursor. */
class CursorPages {
  readonly #starts: (string | undefined)[] = [undefined];
  /** The cursor the last answer gave: more rows follow. */
  next: string | undefined;
  get cursor(): string | undefined {
    return this.#starts[this.#starts.length - 1];
  }
  get number(): number {
    return this.#starts.length;
  }
  forward(): void {
    if (this.next !== undefined) this.#starts.push(this.next);
  }
  back(): void {
    if (this.#starts.length > 1) this.#starts.pop();
  }
}

/** "page 2", Previous and Next under a listing; nothing while it fits one page. */
function cursorPager(pages: CursorPages, reload: () => Promise<void>, id: string): HTMLElement | null {
  if (pages.number === 1 && pages.next === undefined) return null;
  return h(
    "div",
    { class: "pager", id },
    h("span", { class: "muted" }, `page ${pages.number}`),
    pages.number > 1
      ? actionButton(
          "Previous",
          () => {
            pages.back();
            return reload();
          },
          { class: "ghost" },
        )
      : null,
    pages.next !== undefined
      ? actionButton(
          "Next",
          () => {
            pages.forward();
            return reload();
          },
          { class: "ghost" },
        )
      : null,
  );
}

/** Downloads a file through the API (the token goes in a header) and hands it to the browser. */
async function download(api: Api, file: FileRow, query: Query): Promise<void> {
  const res = await api.request(file.url, { query: { ...query, download: 1 } });
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: file.originalFilename || file.key.split("/").pop() });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/**
 * The org's files (an admin: every tenant's, with owners; a plain token: its own): upload
 * (resumable), download, delete; unfinished uploads; the delete queue with dead letters.
 */
export async function filesPage(ctx: PageContext): Promise<Node> {
  const { api, admin, org, ownTenant } = ctx.session;
  const listing: Query = admin ? { org } : {};
  // Acting on another tenant's file needs `?tenant=` (an admin of its org); one's own needs nothing.
  const asOwner = (owner: string | undefined): Query =>
    owner === undefined || owner === ownTenant ? {} : { tenant: owner };

  const filesBox = h("div", null);
  const pendingBox = h("div", null);
  const queueBox = h("div", null);
  const fileStatus = statusLine();

  const filePages = new CursorPages();
  const pendingPages = new CursorPages();

  const loadFiles = async (): Promise<void> => {
    try {
      const res = await api.json<{ files: FileRow[]; cursor?: string }>("/v1/files", {
        query: { ...listing, limit: pageSize, cursor: filePages.cursor },
        signal: ctx.signal,
      });
      // The last file of a later page was deleted: show the page before it.
      if (res.files.length === 0 && filePages.number > 1) {
        filePages.back();
        return loadFiles();
      }
      filePages.next = res.cursor;
      mount(
        filesBox,
        table(
          ["Name", "Size", "Type", ...(admin ? ["Owner"] : []), "Visibility", "Uploaded", ""],
          res.files.map((f) => [
            h("span", { class: "name", title: f.key }, f.originalFilename || f.key),
            formatBytes(f.size),
            h("span", { class: "muted" }, f.contentType),
            ...(admin ? [h("span", { class: "mono" }, f.owner ?? "")] : []),
            f.public ? pill("public", "warn") : pill("private"),
            h("span", { title: formatTime(f.createdAt) }, formatAgo(f.createdAt)),
            h(
              "span",
              { class: "row-actions" },
              actionButton("Download", () => download(api, f, asOwner(f.owner)), {
                status: fileStatus,
                class: "ghost",
                testid: `download-${f.originalFilename}`,
              }),
              confirmButton(
                "Delete",
                async () => {
                  await api.request(f.url, { method: "DELETE", query: asOwner(f.owner) });
                  fileStatus.ok(`${f.originalFilename} deleted (queued for removal from storage)`);
                  await Promise.all([loadFiles(), loadQueue()]);
                },
                { status: fileStatus, testid: `delete-${f.originalFilename}` },
              ),
            ),
          ]),
          "no files yet",
          { id: "files", class: "data" },
        ),
        cursorPager(filePages, loadFiles, "files-pager"),
      );
    } catch (err) {
      if (!ctx.signal.aborted) mount(filesBox, errorBox(err));
    }
  };

  const loadPending = async (): Promise<void> => {
    try {
      const res = await api.json<{ uploads: PendingUpload[]; cursor?: string }>("/v1/uploads", {
        query: { ...listing, limit: pageSize, cursor: pendingPages.cursor },
        signal: ctx.signal,
      });
      if (res.uploads.length === 0 && pendingPages.number > 1) {
        pendingPages.back();
        return loadPending();
      }
      pendingPages.next = res.cursor;
      mount(
        pendingBox,
        table(
          ["Name", "Size", ...(admin ? ["Owner"] : []), "Parts", "Expires", ""],
          res.uploads.map((u) => [
            u.originalFilename,
            formatBytes(u.size),
            ...(admin ? [h("span", { class: "mono" }, u.owner ?? "")] : []),
            String(u.partCount),
            formatTime(u.expiresAt),
            confirmButton("Abort", async () => {
              await api.request(`/v1/uploads/${encodeURIComponent(u.claimId)}`, {
                method: "DELETE",
                query: asOwner(u.owner),
              });
              await loadPending();
            }),
          ]),
          "no unfinished uploads",
          { id: "pending", class: "data" },
        ),
        cursorPager(pendingPages, loadPending, "pending-pager"),
      );
    } catch (err) {
      if (!ctx.signal.aborted) mount(pendingBox, errorBox(err));
    }
  };

  const loadQueue = async () => {
    if (!admin) return;
    try {
      const res = await api.json<{ pending: QueueRow[]; deadLetters: QueueRow[] }>("/v1/delete-queue", {
        query: { org },
        signal: ctx.signal,
      });
      const status = statusLine();
      mount(
        queueBox,
        h("h3", null, "Waiting to be deleted"),
        table(
          ["Key", "Reason", "Owner", "Attempts", "Next attempt", "Last error"],
          res.pending.map((r) => [
            h("span", { class: "mono" }, r.key),
            r.reason,
            h("span", { class: "mono" }, r.owner),
            String(r.attempts),
            formatTime(r.nextAttemptAt),
            h("span", { class: "muted" }, r.lastError),
          ]),
          "the delete queue is empty",
          { id: "delete-queue", class: "data" },
        ),
        h("h3", null, "Dead letters"),
        status,
        table(
          ["Key", "Reason", "Owner", "Attempts", "Failed", "Last error", ""],
          res.deadLetters.map((r) => [
            h("span", { class: "mono" }, r.key),
            r.reason,
            h("span", { class: "mono" }, r.owner),
            String(r.attempts),
            formatTime(r.deadAt),
            h("span", { class: "bad-text" }, r.lastError),
            h(
              "span",
              { class: "row-actions" },
              actionButton(
                "Retry",
                async () => {
                  await api.request(`/v1/delete-queue/dead-letters/${encodeURIComponent(r.id)}/retry`, {
                    method: "POST",
                  });
                  await loadQueue();
                },
                { status, class: "ghost" },
              ),
              confirmButton(
                "Drop",
                async () => {
                  await api.request(`/v1/delete-queue/dead-letters/${encodeURIComponent(r.id)}`, { method: "DELETE" });
                  await loadQueue();
                },
                { status },
              ),
            ),
          ]),
          "no dead letters",
          { id: "dead-letters", class: "data" },
        ),
      );
    } catch (err) {
      if (!ctx.signal.aborted) mount(queueBox, errorBox(err));
    }
  };

  // Upload form.
  const input = h("input", { type: "file", id: "upload-file", "aria-label": "file to upload" });
  const isPublic = h("input", { type: "checkbox", id: "upload-public" });
  const bar = h("progress", { id: "upload-progress", max: 1, value: 0 });
  const uploadStatus = statusLine();
  uploadStatus.id = "upload-status";
  const button = h("button", { type: "submit", class: "primary", id: "upload-button" }, "Upload");
  const refreshButton = () => {
    const file = input.files?.[0];
    button.textContent = file !== undefined && hasUnfinishedUpload(file, isPublic.checked) ? "Resume upload" : "Upload";
  };
  input.addEventListener("change", refreshButton);
  isPublic.addEventListener("change", refreshButton);
  const form = h(
    "form",
    { class: "upload", id: "upload" },
    input,
    h("label", { class: "check" }, isPublic, " public (served to anyone)"),
    button,
    bar,
    uploadStatus,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const file = input.files?.[0];
    if (file === undefined) return uploadStatus.show(new Error("pick a file first"));
    button.disabled = true;
    uploadStatus.clear();
    try {
      let resumed = 0;
      const done = await uploadFile(api, file, {
        public: isPublic.checked,
        onProgress: (p) => {
          resumed = p.resumedParts;
          bar.value = p.totalBytes === 0 ? 1 : p.sentBytes / p.totalBytes;
          uploadStatus.ok(`${formatBytes(p.sentBytes)} of ${formatBytes(p.totalBytes)}`);
        },
      });
      uploadStatus.ok(
        `${file.name} uploaded (${formatBytes(done.size)})${resumed > 0 ? `, resumed after ${resumed} part(s)` : ""}`,
      );
      await Promise.all([loadFiles(), loadPending()]);
    } catch (err) {
      uploadStatus.show(err);
      await loadPending();
    } finally {
      button.disabled = false;
      refreshButton();
    }
  });

  await Promise.all([loadFiles(), loadPending(), loadQueue()]);
  return h(
    "div",
    null,
    pageHeader("Files", admin ? `every upload of org ${org}` : "your uploads"),
    card(
      "Upload a file",
      h("p", { class: "subtitle" }, `as ${ownTenant}; an interrupted upload resumes when you pick the same file again`),
      form,
    ),
    card("Files", fileStatus, filesBox),
    card("Unfinished uploads", pendingBox),
    admin ? card("Delete queue", queueBox) : null,
  );
}
