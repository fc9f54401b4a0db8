import { randomUUID } from "node:crypto";

const EXTENSION = /^\.[A-Za-z0-9]+$/;

/** The extension of `filename` (with its dot) when it matches `^\.[A-Za-z0-9]+$`, else `".bin"`. */
export function uploadExtension(filename: string): string {
  const base = filename.slice(filename.lastIndexOf("/") + 1);
  const dot = base.lastIndexOf(".");
  const ext = dot > 0 ? base.slice(dot) : "";
  return EXTENSION.test(ext) ? ext : ".bin";
}

/**
 * The object key of a new upload: `pub/` or `priv/`, then the UTC date `YYYY/MM/DD/`, a
 * random UUID and the file's extension, e.g. `priv/2026/05/14/0b5c...e1.png`.
 */
export function buildUploadKey(isPublic: boolean, now: number, filename: string): string {
  const d = new Date(now);
  const yyyy = String(d.getUTCFullYear()).padStart(4, "0");
  const mm = String(d.getUTCMonth() + 1).padStart(2, "0");
  const dd = String(d.getUTCDate()).padStart(2, "0");
  return `${isPublic ? "pub" : "priv"}/${yyyy}/${mm}/${dd}/${randomUUID()}${uploadExtension(filename)}`;
}
