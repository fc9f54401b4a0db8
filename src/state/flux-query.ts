import { UnsupportedError } from "../errors.js";

/** One `r.column == literal` comparison of a Flux `filter`. */
export interface FluxEquality {
  readonly column: string;
  readonly value: string | number | boolean;
}

/** What the supported Flux subset can express. */
export interface FluxFilter {
  readonly buckets: readonly string[];
  readonly measurements: readonly string[];
  /** Inclusive lower bound on `committed_at` (ms). */
  readonly start: number | undefined;
  /** Exclusive upper bound on `committed_at` (ms). */
  readonly stop: number | undefined;
  /** Tag or field equalities, all of which must hold. */
  readonly equalities: readonly FluxEquality[];
}

const UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/**
 * Translates a Flux subset: `from(bucket: "b")`, `range(start: -24h, stop: now())` with
 * Go-duration, day-suffix, `now()`, RFC3339 (bare, quoted or `time(v: ...)`) bounds, and
 * `filter(fn: (r) => ...)` with `and`-joined `==` comparisons on `r._measurement`,
 * `r._bucket`, `r.tag` / `r["tag"]`. Anything else throws {@link UnsupportedError} naming the part.
 */
export function parseFlux(query: string, now: number): FluxFilter {
  const buckets: string[] = [];
  const measurements: string[] = [];
  const equalities: FluxEquality[] = [];
  let start: number | undefined;
  let stop: number | undefined;
  for (const raw of query.split("|>")) {
    const stage = raw.trim();
    if (stage === "") throw unsupported("an empty pipeline stage");
    const call = /^([A-Za-z_][A-Za-z0-9_.]*)\s*\(([\s\S]*)\)$/.exec(stage);
    if (call === null) throw unsupported(`"${stage}"`);
    const [, fn, args = ""] = call;
    if (fn === "from") {
      const m = /^\s*bucket\s*:\s*"([^"]*)"\s*$/.exec(args);
      if (m === null) throw unsupported(`from(${args}); use from(bucket: "name")`);
      buckets.push(m[1] as string);
    } else if (fn === "range") {
      for (const [name, value] of namedArgs(args, "range")) {
        if (name === "start") start = parseBound(value, now);
        else if (name === "stop") stop = parseBound(value, now);
        else throw unsupported(`range argument "${name}"`);
      }
    } else if (fn === "filter") {
      const m = /^\s*fn\s*:\s*\(\s*r\s*\)\s*=>\s*([\s\S]+)$/.exec(args);
      if (m === null) throw unsupported(`filter(${args}); use filter(fn: (r) => r.tag == "value")`);
      for (const eq of parseConjunction(m[1] as string)) {
        if (eq.column === "_measurement") measurements.push(String(eq.value));
        else if (eq.column === "_bucket") buckets.push(String(eq.value));
        else equalities.push(eq);
      }
    } else {
      throw unsupported(`the function ${fn}()`);
    }
  }
  return { buckets, measurements, start, stop, equalities };
}

function namedArgs(args: string, fn: string): [string, string][] {
  const out: [string, string][] = [];
  // Split on commas that are not inside parentheses or quotes.
  let depth = 0;
  let quoted = false;
  let current = "";
  for (const ch of args) {
    if (ch === '"') quoted = !quoted;
    if (!quoted && ch === "(") depth++;
    if (!quoted && ch === ")") depth--;
    if (!quoted && depth === 0 && ch === ",") {
      out.push(splitNamed(current, fn));
      current = "";
    } else current += ch;
  }
  if (current.trim() !== "") out.push(splitNamed(current, fn));
  return out;
}

function splitNamed(arg: string, fn: string): [string, string] {
  const m = /^\s*([A-Za-z_]+)\s*:\s*([\s\S]+?)\s*$/.exec(arg);
  if (m === null) throw unsupported(`${fn} argument "${arg.trim()}"`);
  return [m[1] as string, m[2] as string];
}

function parseBound(value: string, now: number): number {
  const v = value.trim();
  if (v === "now()") return now;
  const duration = /^(-?)((?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h|d))+)$/.exec(v);
  if (duration !== null) {
    let ms = 0;
    for (const part of (duration[2] as string).matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)/g)) {
      ms += Number(part[1]) * (UNITS[part[2] as string] as number);
    }
    return now + (duration[1] === "-" ? -ms : ms);
  }
  const time = /^time\s*\(\s*v\s*:\s*([\s\S]+)\)$/.exec(v);
  const literal = (time === null ? v : (time[1] as string).trim()).replace(/^"([\s\S]*)"$/, "$1");
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(literal)) {
    const ms = Date.parse(literal);
    if (!Number.isNaN(ms)) return ms;
  }
  throw unsupported(`the range bound "${v}"; use -24h, -7d, now() or an RFC3339 time`);
}

function parseConjunction(expr: string): FluxEquality[] {
  if (/\s(or)\s/.test(expr)) throw unsupported('"or" in filter; only "and" is supported');
  return expr.split(/\s+and\s+/).map((term) => {
    const m = /^\s*\(?\s*r(?:\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*"([^"]+)"\s*\])\s*==\s*([\s\S]+?)\s*\)?\s*$/.exec(term);
    if (m === null) throw unsupported(`the filter expression "${term.trim()}"; use r.column == value`);
    return { column: (m[1] ?? m[2]) as string, value: parseLiteral(m[3] as string) };
  });
}

function parseLiteral(text: string): string | number | boolean {
  if (/^"[^"]*"$/.test(text)) return text.slice(1, -1);
  if (text === "true" || text === "false") return text === "true";
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  throw unsupported(`the literal ${text}; use a "string", a number, true or false`);
}

function unsupported(part: string): UnsupportedError {
  return new UnsupportedError(`unsupported Flux: ${part}`, { op: "state.queryJournal" });
}

/** Whether a journal row's tags/fields satisfy every equality (strings match tags or fields as text). */
export function matchesEqualities(
  equalities: readonly FluxEquality[],
  fields: Record<string, unknown>,
  tags: Record<string, unknown>,
): boolean {
  for (const { column, value } of equalities) {
    if (typeof value === "string") {
      const tag = tags[column];
      const field = fields[column];
      if (!(tag !== undefined && String(tag) === value) && !(field !== undefined && String(field) === value))
        return false;
    } else if (fields[column] !== value) return false;
  }
  return true;
}
