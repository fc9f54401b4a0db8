import { redactText } from "../internal/redact.js";

/** Reports a background failure as a process warning, with any credentials in the message redacted. */
export function serverWarning(what: string, err: unknown): void {
  process.emitWarning(redactText(`storeroom: ${what}: ${err instanceof Error ? err.message : String(err)}`));
}
