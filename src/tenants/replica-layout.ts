/**
 * Names of a tenant's objects, relative to its prefix ({@link TenantKey.prefix}). Transaction
 * ids are 16 hex digits so keys sort by position; the writer id keeps two writers' objects
 * apart even when their bytes are equal, and the digest (or a random tag for snapshots, which
 * are streamed) keeps different contents apart.
 */
export const MANIFEST_NAME = "manifest.json";

/** `snapshots/<txid>-<generation>-<tag>.db.gz` */
export function snapshotName(txid: number, generation: string, tag: string): string {
  return `snapshots/${hex16(txid)}-${generation}-${tag}.db.gz`;
}

/** `segments/<first>-<last>-<writer>-<digest12>.wal.gz` */
export function segmentName(first: number, last: number, writer: string, sha256: string): string {
  return `segments/${hex16(first)}-${hex16(last)}-${writer}-${sha256.slice(0, 12)}.wal.gz`;
}

/** `packs/<level>-<first>-<last>-<writer>-<digest12>.json` */
export function packName(level: number, first: number, last: number, writer: string, sha256: string): string {
  return `packs/${level}-${hex16(first)}-${hex16(last)}-${writer}-${sha256.slice(0, 12)}.json`;
}

/** What a name under a tenant's prefix is, with the transactions it covers (`undefined`: not one of ours). */
export type ReplicaObject =
  | { readonly kind: "manifest" }
  | { readonly kind: "snapshot"; readonly txid: number }
  | { readonly kind: "segment" | "pack"; readonly first: number; readonly last: number };

const snapshotPattern = /^snapshots\/([0-9a-f]{16})-[0-9a-z]+-[0-9a-z]+\.db\.gz$/;
const segmentPattern = /^segments\/([0-9a-f]{16})-([0-9a-f]{16})-[0-9a-z]+-[0-9a-f]{12}\.wal\.gz$/;
const packPattern = /^packs\/\d+-([0-9a-f]{16})-([0-9a-f]{16})-[0-9a-z]+-[0-9a-f]{12}\.json$/;

export function parseReplicaName(name: string): ReplicaObject | undefined {
  if (name === MANIFEST_NAME) return { kind: "manifest" };
  const snapshot = snapshotPattern.exec(name);
  if (snapshot) return { kind: "snapshot", txid: Number.parseInt(snapshot[1] as string, 16) };
  const segment = segmentPattern.exec(name);
  if (segment) {
    return {
      kind: "segment",
      first: Number.parseInt(segment[1] as string, 16),
      last: Number.parseInt(segment[2] as string, 16),
    };
  }
  const pack = packPattern.exec(name);
  if (pack) {
    return {
      kind: "pack",
      first: Number.parseInt(pack[1] as string, 16),
      last: Number.parseInt(pack[2] as string, 16),
    };
  }
  return undefined;
}

function hex16(n: number): string {
  return n.toString(16).padStart(16, "0");
}
