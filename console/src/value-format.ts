/** How a value is shown: plain text, pretty-printed JSON, or hex of its UTF-8 bytes. */
export type ValueView = "text" | "json" | "hex";

/** The view that suits a value: JSON when it parses as an object or array, hex when it holds control bytes. */
export function suggestedView(value: string): ValueView {
  if (hasControlBytes(value)) return "hex";
  const trimmed = value.trim();
  if ((trimmed.startsWith("{") || trimmed.startsWith("[")) && prettyJson(value) !== undefined) return "json";
  return "text";
}

/** The value pretty-printed, or `undefined` when it is not JSON. */
export function prettyJson(value: string): string | undefined {
  try {
    return JSON.stringify(JSON.parse(value), null, 2);
  } catch {
    return undefined;
  }
}

/** A hex dump: offset, 16 bytes in hex, and their printable ASCII. */
export function hexDump(value: string): string {
  const bytes = new TextEncoder().encode(value);
  const lines: string[] = [];
  for (let offset = 0; offset < bytes.length; offset += 16) {
    const row = bytes.subarray(offset, offset + 16);
    const hex = [...row].map((b) => b.toString(16).padStart(2, "0")).join(" ");
    const ascii = [...row].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".")).join("");
    lines.push(`${offset.toString(16).padStart(8, "0")}  ${hex.padEnd(47, " ")}  ${ascii}`);
  }
  return lines.join("\n");
}

/** A one-line preview of a value. */
export function preview(value: string, max = 60): string {
  const flat = hasControlBytes(value)
    ? `${new TextEncoder().encode(value).length} bytes (binary)`
    : value.replace(/\s+/g, " ");
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function hasControlBytes(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) || c === 0x7f) return true;
  }
  return false;
}
