import type { ObjectInfo } from "../objects/index.js";
import type { Manifest } from "./manifest.js";
import { walkLog } from "./manifest-log.js";
import { parseReplicaName } from "./replica-layout.js";
import type { ReplicaObjects } from "./replica-objects.js";

/** Objects under a tenant's prefix that the manifest no longer needs, found by listing. */
export interface Garbage {
  /** Older than the oldest retained snapshot: safe to delete now. */
  readonly expired: readonly string[];
  /** Not named by the manifest (failed publications, fenced writers) and older than the grace period. */
  readonly orphans: readonly string[];
}

/**
 * Lists a tenant's objects and sorts out what `manifest` does not name: expired history
 * (transactions at or before its oldest snapshot) and orphans (anything else unnamed, once
 * older than `graceMs`, so a writer's upload is never taken before its manifest names it).
 * Names that are not replica objects are left alone.
 */
export async function findGarbage(
  objects: ReplicaObjects,
  manifest: Manifest,
  now: number,
  graceMs: number,
): Promise<Garbage> {
  const oldest = (manifest.snapshots[0] as Manifest["snapshots"][number]).txid;
  const named = new Set<string>([...manifest.snapshots.map((s) => s.key), ...manifest.log.map((i) => i.key)]);
  const expired: string[] = [];
  const candidates: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await objects.store.list(objects.prefix, cursor === undefined ? {} : { cursor });
    for (const object of page.objects) {
      const name = object.key.slice(objects.prefix.length);
      const parsed = parseReplicaName(name);
      if (parsed === undefined || parsed.kind === "manifest" || named.has(name)) continue;
      const ending = parsed.kind === "snapshot" ? parsed.txid : parsed.last;
      if (parsed.kind === "snapshot" ? ending < oldest : ending <= oldest) expired.push(name);
      else if (old(object, now, graceMs)) candidates.push(name);
    }
    cursor = page.cursor;
  } while (cursor !== undefined);
  if (candidates.length === 0) return { expired, orphans: [] };
  // Segments and packs inside the retained range may be named through packs: open them.
  await walkLog(
    manifest.log,
    (item) => objects.readPack(item),
    (item) => named.add(item.key),
  );
  return { expired, orphans: candidates.filter((name) => !named.has(name)) };
}

function old(object: ObjectInfo, now: number, graceMs: number): boolean {
  return graceMs === 0 || now - object.lastModified >= graceMs;
}
