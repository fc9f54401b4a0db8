import { isUtf8 } from "node:buffer";

/**
 * A frame's text. A byte that Go's UTF-8 decoder rejects (`utf8.DecodeRune` returning
 * `RuneError` with size 1: stray continuation bytes, truncated or overlong sequences, encoded
 * surrogates, values above U+10FFFF) is kept as the lone surrogate U+DC80-U+DCFF (byte | 0xDC00),
 * so the text round-trips to the exact bytes through {@link wireBytes}. `lossless` is `false`
 * exactly when such bytes occurred.
 */
export interface WireText {
  readonly text: string;
  readonly lossless: boolean;
}

/** Decodes a frame's bytes; see {@link WireText}. Valid UTF-8 (the usual case) costs one native check. */
export function decodeWireText(bytes: Uint8Array): WireText {
  if (isUtf8(bytes))
    return { text: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("utf8"), lossless: true };
  const units: number[] = [];
  let text = "";
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i] as number;
    const size = b < 0x80 ? 1 : sequenceLength(bytes, i);
    if (size === 0) {
      units.push(0xdc00 | b);
      i++;
    } else {
      const cp = size === 1 ? b : codePoint(bytes, i, size);
      if (cp > 0xffff) units.push(0xd800 + ((cp - 0x10000) >> 10), 0xdc00 + ((cp - 0x10000) & 0x3ff));
      else units.push(cp);
      i += size;
    }
    if (units.length >= 4096) text += String.fromCharCode(...units.splice(0));
  }
  return { text: text + String.fromCharCode(...units), lossless: false };
}

/**
 * The bytes of `text` as a frame carries them: UTF-8, except that a lone surrogate
 * U+DC80-U+DCFF stands for the raw byte it was decoded from (see {@link decodeWireText}). Any
 * other lone surrogate becomes U+FFFD (EF BF BD), as `Buffer.from` writes it.
 */
export function wireBytes(text: string): Buffer {
  if (text.isWellFormed()) return Buffer.from(text, "utf8");
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const u = text.charCodeAt(i);
    if (u < 0x80) out.push(u);
    else if (u < 0x800) out.push(0xc0 | (u >> 6), 0x80 | (u & 0x3f));
    else if (u >= 0xd800 && u <= 0xdbff && isLow(text.charCodeAt(i + 1))) {
      const cp = 0x10000 + ((u - 0xd800) << 10) + (text.charCodeAt(i + 1) - 0xdc00);
      out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
      i++;
    } else if (u >= 0xdc80 && u <= 0xdcff) out.push(u & 0xff);
    else if (u >= 0xd800 && u <= 0xdfff) out.push(0xef, 0xbf, 0xbd);
    else out.push(0xe0 | (u >> 12), 0x80 | ((u >> 6) & 0x3f), 0x80 | (u & 0x3f));
  }
  return Buffer.from(out);
}

/** `text` with every raw-byte surrogate (see {@link decodeWireText}) replaced by U+FFFD, as Go decodes such bytes in a string. */
export function replaceRawBytes(text: string): string {
  return text.isWellFormed()
    ? text
    : text.replace(/[\udc80-\udcff]/g, (u, at: number) => (isHigh(text.charCodeAt(at - 1)) ? u : "\ufffd"));
}

function isLow(u: number): boolean {
  return u >= 0xdc00 && u <= 0xdfff;
}

function isHigh(u: number): boolean {
  return u >= 0xd800 && u <= 0xdbff;
}

/** Length of the valid UTF-8 sequence starting with a non-ASCII byte at `i`, or 0 (Go's accept ranges). */
function sequenceLength(b: Uint8Array, i: number): number {
  const c = b[i] as number;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => {
    const x = b[i + k];
    return x !== undefined && x >= lo && x <= hi;
  };
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if ((c >= 0xe1 && c <= 0xec) || c === 0xee || c === 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (c === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (c === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xf1 && c <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

function codePoint(b: Uint8Array, i: number, size: number): number {
  const c = b[i] as number;
  let cp = size === 2 ? c & 0x1f : size === 3 ? c & 0x0f : c & 0x07;
  for (let k = 1; k < size; k++) cp = (cp << 6) | ((b[i + k] as number) & 0x3f);
  return cp;
}
