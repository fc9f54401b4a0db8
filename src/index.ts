/**
 * storeroom: a storage toolkit on SQLite, with PostgreSQL and S3-compatible object storage.
 * @module
 */
export * from "./background-job.js";
export * from "./bus/index.js";
export * from "./clock.js";
export * from "./errors.js";
export * from "./kv/index.js";
export * from "./objects/index.js";
export * from "./sql/index.js";
export * from "./state/index.js";
export * from "./tenants/index.js";
export * from "./uploads/index.js";
