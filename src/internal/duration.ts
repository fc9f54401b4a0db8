import { InvalidArgumentError } from "../errors.js";

const unitMs: Readonly<Record<string, number>> = Object.freeze({
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
});

/**
 * Parses a duration like `90s`, `30m`, `12h`, `30d` or `8w` into milliseconds. Anything else
 * (no unit, zero, a fraction, over ten years) -> InvalidArgumentError starting with `name`.
 */
export function parseDuration(text: string, name: string): number {
  const match = /^(\d{1,6})([smhdw])$/.exec(text);
  const ms = match === null ? Number.NaN : Number(match[1]) * (unitMs[match[2] as string] as number);
  if (!(ms > 0) || ms > 10 * 366 * 86_400_000) {
    throw new InvalidArgumentError(`${name} must be a duration like 90s, 30m, 12h, 30d or 8w (up to ten years)`, {
      op: "duration",
    });
  }
  return ms;
}
