const ALLOWED_EXACT = new Set([
  "application/pdf",
  "application/zip",
  "application/gzip",
  "application/x-tar",
  "application/octet-stream",
]);

const ALLOWED_FAMILIES = ["image/", "audio/", "video/", "font/"];

/** Types of allowed families that browsers can run script from; never served as-is. */
const SCRIPTABLE = new Set(["image/svg+xml"]);

const BY_EXTENSION: Readonly<Record<string, string>> = {
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  avif: "image/avif",
  bmp: "image/bmp",
  ico: "image/x-icon",
  heic: "image/heic",
  mp3: "audio/mpeg",
  wav: "audio/wav",
  ogg: "audio/ogg",
  m4a: "audio/mp4",
  flac: "audio/flac",
  mp4: "video/mp4",
  webm: "video/webm",
  mov: "video/quicktime",
  woff: "font/woff",
  woff2: "font/woff2",
  ttf: "font/ttf",
  otf: "font/otf",
  pdf: "application/pdf",
  zip: "application/zip",
  gz: "application/gzip",
  tar: "application/x-tar",
};

const TYPE_SYNTAX = /^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/;

/**
 * The content type an upload is stored and served with, safe against stored XSS: the declared
 * type (parameters dropped, lower-cased) when it is `image/*`, `audio/*`, `video/*`, `font/*`,
 * PDF, zip, gzip, tar or octet-stream (SVG excluded: it can carry script); otherwise the type
 * of the file name's extension from that same list; otherwise `application/octet-stream`.
 *
 * @example
 * ```ts
 * sanitizeContentType("text/html", "x.html"); // "application/octet-stream"
 * sanitizeContentType("", "photo.JPG"); // "image/jpeg"
 * ```
 */
export function sanitizeContentType(declared: string | undefined, filename = ""): string {
  const type = (declared ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  if (isAllowed(type)) return type;
  const dot = filename.lastIndexOf(".");
  const byExtension = dot >= 0 ? BY_EXTENSION[filename.slice(dot + 1).toLowerCase()] : undefined;
  return byExtension ?? "application/octet-stream";
}

function isAllowed(type: string): boolean {
  if (!TYPE_SYNTAX.test(type) || SCRIPTABLE.has(type)) return false;
  return ALLOWED_EXACT.has(type) || ALLOWED_FAMILIES.some((f) => type.startsWith(f));
}
