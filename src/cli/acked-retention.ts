import { InvalidArgumentError } from "../errors.js";

/**
 * Parses an acked-message retention given on the command line or in the environment: a whole
 * number of ms, or `infinity` (never prune). The error names the flag and its variable.
 */
export function parseAckedRetentionMs(raw: string, flag: string, variable: string): number {
  if (/^infinity$/i.test(raw)) return Number.POSITIVE_INFINITY;
  if (!/^\d{1,15}$/.test(raw)) {
    throw new InvalidArgumentError(
      `${flag} must be a whole number of ms or "infinity", got "${raw}" (or ${variable})`,
      {
        op: "cli.options",
      },
    );
  }
  return Number(raw);
}
