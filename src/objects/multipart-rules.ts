import { InvalidArgumentError } from "../errors.js";
import type { CompletedPart } from "./object-store.js";

/** A part as a backend recorded it. */
export interface RecordedPart {
  readonly etag: string;
  readonly size: number;
}

/** Throws {@link InvalidArgumentError} unless `partNumber` is an integer in 1..maxPartCount. */
export function assertPartNumber(partNumber: number, maxPartCount: number, op: string): void {
  if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > maxPartCount) {
    throw new InvalidArgumentError(`part number must be an integer in 1..${maxPartCount}, got ${partNumber}`, { op });
  }
}

/**
 * The completion rules every backend enforces: at least one part, numbers contiguous 1..N (any order given,
 * no duplicates), every etag equal to the recorded one, every non-final part at least
 * `partSize`. Returns the recorded parts in order; throws {@link InvalidArgumentError}.
 */
export function checkCompletedParts<P extends RecordedPart>(
  parts: readonly CompletedPart[],
  recorded: ReadonlyMap<number, P>,
  partSize: number,
  op: string,
): P[] {
  assertPartList(parts, op);
  if (parts.length === 0) throw new InvalidArgumentError("completeMultipart needs at least one part", { op });
  const sorted = [...parts].sort((a, b) => a.partNumber - b.partNumber);
  const ordered: P[] = [];
  for (const [index, part] of sorted.entries()) {
    if (part.partNumber !== index + 1) {
      throw new InvalidArgumentError(`parts must be numbered 1..${sorted.length} without gaps or duplicates`, { op });
    }
    const found = recorded.get(part.partNumber);
    if (!found) throw new InvalidArgumentError(`part ${part.partNumber} was never uploaded`, { op });
    if (normalizeEtag(part.etag) !== normalizeEtag(found.etag)) {
      throw new InvalidArgumentError(`part ${part.partNumber} etag does not match the uploaded part`, { op });
    }
    if (index < sorted.length - 1 && found.size < partSize) {
      throw new InvalidArgumentError(
        `part ${part.partNumber} is ${found.size} bytes; non-final parts need at least ${partSize}`,
        { op },
      );
    }
    ordered.push(found);
  }
  return ordered;
}

/**
 * Throws {@link InvalidArgumentError} unless `parts` is an array of `{ partNumber, etag }` with
 * an integer number and a string etag: checked before any I/O.
 */
export function assertPartList(parts: unknown, op: string): asserts parts is readonly CompletedPart[] {
  if (!Array.isArray(parts)) throw new InvalidArgumentError("parts must be an array of { partNumber, etag }", { op });
  for (const part of parts) {
    const { partNumber, etag } = (part ?? {}) as { partNumber?: unknown; etag?: unknown };
    if (typeof part !== "object" || !Number.isInteger(partNumber) || typeof etag !== "string") {
      throw new InvalidArgumentError("parts must be an array of { partNumber, etag }", { op });
    }
  }
}

/** Etags compare without surrounding quotes (S3 sends them quoted). */
export function normalizeEtag(etag: string): string {
  return typeof etag === "string" ? etag.replace(/^W\//, "").replace(/"/g, "") : "";
}

/** Validates a configured size or count (a positive safe integer). */
export function positiveSize(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1)
    throw new InvalidArgumentError(`${name} must be a positive integer, got ${value}`);
  return value;
}

/** Validates a configured part-count limit: `Infinity` or a positive safe integer. */
export function partCountLimit(value: number | undefined): number {
  return value === undefined || value === Number.POSITIVE_INFINITY
    ? Number.POSITIVE_INFINITY
    : positiveSize(value, "maxPartCount");
}

/**
 * The range `requested` clamped to an object of `size` bytes. A start at or past the size, a
 * negative start or `start >= end` -> {@link InvalidArgumentError}.
 */
export function clampRange(
  requested: { start: number; end: number },
  size: number,
  op: string,
): { start: number; end: number } {
  assertRange(requested, op);
  const { start, end } = requested;
  if (start >= size) {
    throw new InvalidArgumentError(`range ${start}-${end} is not within the object's ${size} bytes`, { op });
  }
  return { start, end: Math.min(end, size) };
}

/**
 * Throws {@link InvalidArgumentError} unless `range` is a well-formed range whatever the
 * object: integers with `0 <= start < end`. Checked before any lookup, so a bad range is an
 * error on every backend, also for a missing object.
 */
export function assertRange(range: unknown, op: string): asserts range is { start: number; end: number } {
  const { start, end } = (range ?? {}) as { start?: unknown; end?: unknown };
  if (
    !Number.isSafeInteger(start) ||
    !Number.isSafeInteger(end) ||
    (start as number) < 0 ||
    (start as number) >= (end as number)
  ) {
    throw new InvalidArgumentError(`range must have integers 0 <= start < end, got ${String(start)}-${String(end)}`, {
      op,
    });
  }
}
