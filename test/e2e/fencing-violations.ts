import type { LogItem, Manifest } from "../../src/tenants/manifest.js";
import type { RecordedPut } from "../support/conditional-s3-proxy.js";

/** What {@link fencingViolations} read, for the test's log line. */
export interface ManifestHistoryCounts {
  tenants: number;
  manifests: number;
  /** Writer changes along the histories (takeovers that published). */
  handovers: number;
}

/**
 * Checks that no two writers ever advanced one tenant's manifest, from every manifest each
 * tenant published (in order) and its final retained segments: along a tenant's history the
 * fencing epoch never decreases, each epoch has one writer, the last transaction never goes
 * back, each manifest's log is contiguous and ends at its transaction, and a new writer starts
 * right after the transactions of the one before (no range written twice). Returns one line
 * per violation (none when fencing held).
 */
export function fencingViolations(
  puts: readonly RecordedPut[],
  finalSegments: ReadonlyMap<string, readonly LogItem[]>,
): { violations: string[]; counts: ManifestHistoryCounts } {
  const violations: string[] = [];
  const byTenant = new Map<string, Manifest[]>();
  for (const put of puts) {
    const list = byTenant.get(put.key) ?? [];
    list.push(JSON.parse(put.body.toString("utf8")) as Manifest);
    byTenant.set(put.key, list);
  }
  let manifests = 0;
  let handovers = 0;
  for (const [key, history] of byTenant) {
    manifests += history.length;
    const writerOf = new Map<number, string>();
    for (const [i, m] of history.entries()) {
      const at = `${key} #${i} (epoch ${m.epoch}, writer ${m.writer}, txid ${m.txid})`;
      const held = writerOf.get(m.epoch);
      if (held !== undefined && held !== m.writer) violations.push(`${at}: epoch ${m.epoch} already held by ${held}`);
      writerOf.set(m.epoch, m.writer);
      violations.push(...gaps(m.log, `${at} log`));
      const last = m.log.at(-1);
      if (last !== undefined && last.last !== m.txid) violations.push(`${at}: log ends at ${last.last}`);
      const prev = history[i - 1];
      if (prev === undefined) continue;
      if (m.epoch < prev.epoch) violations.push(`${at}: epoch went back from ${prev.epoch}`);
      if (m.txid < prev.txid) violations.push(`${at}: txid went back from ${prev.txid}`);
      if (m.writer === prev.writer) continue;
      handovers += 1;
      if (m.epoch <= prev.epoch) violations.push(`${at}: took over from ${prev.writer} without a new epoch`);
      // The new writer's first segment starts right after the last transaction of the one before.
      const firstNew = m.log.find((s) => s.last > prev.txid);
      if (firstNew !== undefined && firstNew.first !== prev.txid + 1 && m.generation === prev.generation)
        violations.push(`${at}: continues at ${firstNew.first} after ${prev.writer}'s ${prev.txid}`);
    }
  }
  for (const [key, segments] of finalSegments) violations.push(...gaps(segments, `${key} final segments`));
  return { violations, counts: { tenants: byTenant.size, manifests, handovers } };
}

function gaps(segments: readonly LogItem[], at: string): string[] {
  const found: string[] = [];
  for (const [i, s] of segments.entries()) {
    if (s.first > s.last) found.push(`${at}: segment ${s.key} runs ${s.first}..${s.last}`);
    const prev = segments[i - 1];
    if (prev !== undefined && s.first !== prev.last + 1)
      found.push(`${at}: ${s.key} starts at ${s.first} after ${prev.last}`);
  }
  return found;
}
