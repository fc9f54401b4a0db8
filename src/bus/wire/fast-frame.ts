import type { Envelope } from "./envelope.js";
import { compactGoJson, MAX_JSON_DEPTH, skipWs } from "./go-json.js";

/**
 * The frames nearly all traffic consists of (envelopes, deliver frames, acks) in their plain
 * shape, decoded with the engine's `JSON.parse` instead of the scanner. It answers only when
 * the result is certainly the one the scanner gives: valid JSON short enough that nesting
 * cannot reach a limit, no byte that was not UTF-8, every member name exactly a field name,
 * every string field a string (a `null` is left to the scanner: Go skips it, so a repeated
 * member could win), one `envelope` member. Anything else returns `undefined`, and the caller
 * runs the scanner, which also reports what is wrong.
 */
export type FastFrame =
  | { readonly type: "envelope"; readonly envelope: Envelope }
  | { readonly type: "deliver"; readonly deliveryKey: string; readonly envelope: Envelope }
  | { readonly type: "ack"; readonly id: string };

/** Shorter texts cannot nest as deep as a deliver frame's limit allows (two characters per level). */
const MAX_FAST_LENGTH = 2 * (MAX_JSON_DEPTH - 2);

const ENVELOPE_STRINGS = ["protocol_version", "id", "from", "to", "ts", "source", "kind", "hmac"] as const;
const ENVELOPE_KEYS: ReadonlySet<string> = new Set([...ENVELOPE_STRINGS, "body"]);
const DELIVER_KEYS: ReadonlySet<string> = new Set(["protocol_version", "type", "delivery_key", "envelope"]);
const ACK_KEYS: ReadonlySet<string> = new Set(["protocol_version", "type", "id"]);

/** Where {@link parseFastFrame} puts a deliver frame's body as `JSON.parse` decoded it. */
export interface DecodedBody {
  /** The body's value; set only when a deliver frame was decoded the fast way. */
  value?: unknown;
}

/**
 * Decodes `text` the fast way, or `undefined` when the scanner must (see {@link FastFrame}).
 * For a deliver frame, `decoded.value` receives its envelope's body already decoded, the value
 * `JSON.parse(envelope.body)` gives, so a receiver need not parse it again.
 */
export function parseFastFrame(text: string, decoded?: DecodedBody): FastFrame | undefined {
  if (text.length >= MAX_FAST_LENGTH || !text.isWellFormed()) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(value)) return undefined;
  const type = value.type;
  const scan: NestedScan = { members: undefined };
  const members = memberTexts(text, 0, type === "deliver" ? scan : undefined);
  if (members === undefined) return undefined;
  if (type === undefined) {
    const envelope = fastEnvelope(value, members);
    return envelope === undefined ? undefined : { type: "envelope", envelope };
  }
  if (type === "ack") {
    if (!onlyKeys(value, ACK_KEYS) || typeof value.id !== "string" || !isString(value.protocol_version, true)) {
      return undefined;
    }
    return { type, id: wellFormed(value.id) };
  }
  if (type !== "deliver" || !onlyKeys(value, DELIVER_KEYS)) return undefined;
  if (typeof value.delivery_key !== "string" || !isString(value.protocol_version, true) || !isObject(value.envelope)) {
    return undefined;
  }
  const inner = scan.members;
  const envelope = inner === undefined ? undefined : fastEnvelope(value.envelope, inner);
  if (envelope === undefined) return undefined;
  if (decoded !== undefined) decoded.value = value.envelope.body ?? null;
  return { type, deliveryKey: wellFormed(value.delivery_key), envelope };
}

function fastEnvelope(value: Record<string, unknown>, members: Map<string, string>): Envelope | undefined {
  if (!onlyKeys(value, ENVELOPE_KEYS)) return undefined;
  for (const f of ENVELOPE_STRINGS) if (!isString(value[f], true)) return undefined;
  const raw = members.get("body") ?? "null";
  const field = (f: (typeof ENVELOPE_STRINGS)[number]) => wellFormed((value[f] as string | undefined) ?? "");
  return {
    protocol_version: field("protocol_version"),
    id: field("id"),
    from: field("from"),
    to: field("to"),
    ts: field("ts"),
    source: field("source"),
    kind: field("kind"),
    body: compactGoJson(raw),
    hmac: field("hmac"),
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A string, or (when `optional`) absent; `null` is not accepted (see {@link FastFrame}). */
function isString(value: unknown, optional: boolean): boolean {
  return typeof value === "string" || (optional && value === undefined);
}

function onlyKeys(value: Record<string, unknown>, allowed: ReadonlySet<string>): boolean {
  for (const key in value) if (!allowed.has(key)) return false;
  return true;
}

/** A lone surrogate from a `\uD800`-style escape becomes U+FFFD, as Go decodes it. */
function wellFormed(value: string): string {
  return value.isWellFormed() ? value : value.toWellFormed();
}

/** A deliver frame's `envelope` member, read in the same pass as the frame (see {@link memberTexts}). */
interface NestedScan {
  /** The members of the `envelope` object, or `undefined` when they are not plain (or there is none). */
  members: Map<string, string> | undefined;
  /** Where the object last read ends. */
  end?: number;
}

/**
 * The raw text of each member of the object starting at `at` of valid JSON, or `undefined`
 * when a name occurs twice or is written with escapes (then only the scanner can tell which
 * member wins, and whether an earlier one was of the wrong type). With `nested`, the members of
 * an `envelope` member's object go to `nested.members`, read in the same pass.
 */
function memberTexts(text: string, at: number, nested?: NestedScan): Map<string, string> | undefined {
  const found = new Map<string, string>();
  let i = skipWs(text, at) + 1;
  for (;;) {
    i = skipWs(text, i);
    if (text.charCodeAt(i) === 125) {
      if (nested !== undefined) nested.end = i + 1;
      return found;
    }
    const keyEnd = skipString(text, i);
    const key = text.slice(i + 1, keyEnd - 1);
    if (key.includes("\\") || found.has(key)) return undefined;
    i = skipWs(text, skipWs(text, keyEnd) + 1);
    const start = i;
    if (nested !== undefined && key === "envelope" && text.charCodeAt(i) === 123) {
      const inner: NestedScan = { members: undefined };
      nested.members = memberTexts(text, i, inner);
      if (nested.members === undefined) return undefined;
      i = inner.end as number;
    } else i = skipValue(text, i);
    found.set(key, text.slice(start, i));
    i = skipWs(text, i);
    if (text.charCodeAt(i) === 44) i++;
  }
}

/** Past the string starting at `i` (a quote), jumping to each closing-quote candidate. */
function skipString(s: string, i: number): number {
  let j = i + 1;
  for (;;) {
    const q = s.indexOf('"', j);
    let slashes = 0;
    for (let k = q - 1; s.charCodeAt(k) === 92; k--) slashes++;
    if (slashes % 2 === 0) return q + 1;
    j = q + 1;
  }
}

function skipValue(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c === 34) return skipString(s, i);
  if (c !== 123 && c !== 91) {
    let j = i;
    for (;;) {
      const d = s.charCodeAt(j);
      if (d === 44 || d === 125 || d === 93 || d === 32 || d === 9 || d === 10 || d === 13 || Number.isNaN(d)) return j;
      j++;
    }
  }
  let depth = 0;
  for (let j = i; ; j++) {
    const d = s.charCodeAt(j);
    if (d === 34) j = skipString(s, j) - 1;
    else if (d === 123 || d === 91) depth++;
    else if (d === 125 || d === 93) {
      depth--;
      if (depth === 0) return j + 1;
    }
  }
}
