import type { ObjectInfo } from "../objects/index.js";
import type { Durability } from "./replica-host.js";
import type { TenantKey } from "./tenant-key.js";

/** What {@link TenantStore.checkpoint} published. */
export interface CheckpointResult {
  readonly key: TenantKey;
  /** False when the tenant was not resident or had nothing unpublished. */
  readonly uploaded: boolean;
  /** Last transaction the tenant's manifest names after the call (0: never published). */
  readonly txid: number;
  /** Etag of the tenant's manifest after the call (`null`: never published). */
  readonly etag: string | null;
  /** Bytes uploaded (segments, packs, snapshots, manifest; 0 when nothing was). */
  readonly bytes: number;
}

/** A tenant found in object storage by {@link TenantStore.list}. */
export interface TenantListing {
  readonly key: TenantKey;
  /** `replicated`: a manifest under `tenants/`; `legacy`: a single object of the old layout, migrated on first use. */
  readonly layout: "replicated" | "legacy";
  /** Stored bytes of all the tenant's objects. */
  readonly size: number;
  /** Etag of the manifest (or of the legacy object). */
  readonly etag: string;
  readonly lastModified: number;
}

/** What {@link TenantStore.inspect} reports about one tenant. */
export interface TenantInfo {
  readonly key: TenantKey;
  /** Key of the tenant's manifest. */
  readonly manifestKey: string;
  readonly localPath: string;
  /** Open in this store right now. */
  readonly resident: boolean;
  /** Calls and callbacks using it now (0 when not resident). */
  readonly leases: number;
  readonly durability: Durability;
  /** Replication state of the resident copy (`null` when not resident). */
  readonly replica: {
    /** Last transaction published (0: never). */
    readonly txid: number;
    readonly generation: string | null;
    readonly epoch: number;
    /** This store's writer holds the epoch. */
    readonly owned: boolean;
    /** Age of the oldest unpublished write, ms. */
    readonly lagMs: number;
    readonly conflict: string | null;
  } | null;
  /** The manifest object as stored now, or `null` when there is none. */
  readonly manifest: ObjectInfo | null;
}

/** Counters of one background pass ({@link TenantStore.reap}). */
export interface PassResult {
  readonly done: number;
  readonly failed: number;
}
