/**
 * A `Content-Disposition` value for `filename` (RFC 6266): an ASCII `filename` fallback with
 * quotes, backslashes, control and non-ASCII characters replaced by `_`, plus `filename*` with
 * the UTF-8 name percent-encoded (RFC 8187) when the name is not plain ASCII.
 *
 * @example
 * ```ts
 * contentDisposition("inline", "report.pdf"); // 'inline; filename="report.pdf"'
 * contentDisposition("attachment", "Übersicht 2026.pdf");
 * // 'attachment; filename="_bersicht 2026.pdf"; filename*=UTF-8\'\'%C3%9Cbersicht%202026.pdf'
 * ```
 */
export function contentDisposition(type: "inline" | "attachment", filename: string): string {
  const fallback = filename.replace(/[^\x20-\x7e]|["\\]/g, "_");
  const value = `${type}; filename="${fallback}"`;
  return fallback === filename ? value : `${value}; filename*=UTF-8''${encodeRfc8187(filename)}`;
}

function encodeRfc8187(text: string): string {
  // attr-char of RFC 8187 keeps ALPHA / DIGIT / "!#$&+-.^_`|~"; everything else is percent-encoded.
  return encodeURIComponent(text).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
