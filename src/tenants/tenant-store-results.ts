import type { ObjectInfo } from "../objects/object-store.js";
import type { TenantKey } from "./tenant-key.js";

/** What {@link TenantStore.checkpoint} did. */
export interface CheckpointResult {
  readonly key: TenantKey;
  /** False when the tenant was not resident or had no changes since its last checkpoint. */
  readonly uploaded: boolean;
  /** The object's generation after the call (`null`: never uploaded). */
  readonly etag: string | null;
  /** Bytes uploaded (0 when nothing was). */
  readonly bytes: number;
}

/** A tenant found in object storage by {@link TenantStore.list}. */
export interface TenantListing {
  readonly key: TenantKey;
  readonly size: number;
  readonly etag: string;
  readonly lastModified: number;
}

/** What {@link TenantStore.inspect} reports about one tenant. */
export interface TenantInfo {
  readonly key: TenantKey;
  readonly objectKey: string;
  readonly localPath: string;
  /** Open in this store right now. */
  readonly resident: boolean;
  /** Calls and callbacks using it now (0 when not resident). */
  readonly leases: number;
  /** Changes not yet checkpointed (0 when not resident). */
  readonly dirtyChanges: number;
  /** Generation the resident copy derives from (`null`: never uploaded, or not resident). */
  readonly etag: string | null;
  /** The object as stored now, or `null` when there is none. */
  readonly object: ObjectInfo | null;
}

/** Counters of one background pass ({@link TenantStore.reap}, {@link TenantStore.checkpointDue}). */
export interface PassResult {
  readonly done: number;
  readonly failed: number;
}
