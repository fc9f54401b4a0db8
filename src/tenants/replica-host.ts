import type { Clock } from "../clock.js";
import type { TenantKey } from "./tenant-key.js";

/** `async`: acknowledged at local commit, published within `syncIntervalMs`; `sync`: acknowledged once published. */
export type Durability = "async" | "sync";

/** How a store replicates its tenants (resolved {@link TenantStoreOptions}). */
export interface ReplicationSettings {
  readonly durability: Durability;
  readonly syncIntervalMs: number;
  readonly snapshotFraction: number;
  readonly snapshotIntervalMs: number;
  readonly retentionMs: number;
  readonly walCheckpointBytes: number;
  readonly maxSegmentBytes: number;
  readonly orphanGraceMs: number;
  readonly multipartBytes: number;
}

/** Cumulative replication counters of one store (all tenants). */
export interface ReplicationCounters {
  /** Segments published, and their stored bytes. */
  segments: number;
  segmentBytes: number;
  /** Manifests published, and their bytes. */
  manifests: number;
  manifestBytes: number;
  /** Packs (log index objects) written, and their bytes. */
  packs: number;
  packBytes: number;
  /** Snapshots published, their stored bytes and the time spent taking and uploading them. */
  snapshots: number;
  snapshotBytes: number;
  snapshotMs: number;
  /** Publish attempts that failed (retried). */
  failures: number;
  /** Conflicts detected (fenced writes and diverged cached copies). */
  conflicts: number;
  /** Hydrations and restores from object storage, their time and downloaded bytes. */
  restores: number;
  restoreMs: number;
  restoreBytes: number;
  /** Objects deleted by garbage collection. */
  collected: number;
}

export function zeroCounters(): ReplicationCounters {
  return {
    segments: 0,
    segmentBytes: 0,
    manifests: 0,
    manifestBytes: 0,
    packs: 0,
    packBytes: 0,
    snapshots: 0,
    snapshotBytes: 0,
    snapshotMs: 0,
    failures: 0,
    conflicts: 0,
    restores: 0,
    restoreMs: 0,
    restoreBytes: 0,
    collected: 0,
  };
}

/** One successful publication of a tenant's new transactions. */
export interface ShipEvent {
  readonly key: TenantKey;
  readonly durability: Durability;
  /** Last transaction now published. */
  readonly txid: number;
  /** Fencing epoch of the manifest that published it. */
  readonly epoch: number;
  /** Transactions and stored bytes (segments, packs, manifest) published in this round. */
  readonly transactions: number;
  readonly bytes: number;
  /** Age of the oldest write this round published, ms (the replication lag it ended). */
  readonly lagMs: number;
  /** How long the round took (reading the WAL, uploads, the manifest), ms. */
  readonly durationMs: number;
}

/** What a tenant's replica needs from its store. */
export interface ReplicaHost {
  readonly writer: string;
  readonly cacheRoot: string;
  readonly tempDir: string;
  readonly clock: Clock;
  readonly settings: ReplicationSettings;
  readonly counters: ReplicationCounters;
  /**
   * Resolves once the object store is known to honour conditional writes (checked at open, or
   * again now when it could not be reached then); rejects with the reason it must not be used.
   */
  ready(): Promise<void>;
  /** A round of publication succeeded. */
  shipped(event: ShipEvent): void;
  /** Background work failed (reported, retried). */
  failed(key: TenantKey, error: unknown): void;
  /** The replica was fenced: the store counts it, stops serving the tenant and keeps its copy as a conflict record. */
  fenced(key: TenantKey): void;
}
