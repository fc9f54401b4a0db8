/**
 * storeroom: a storage toolkit on SQLite, with PostgreSQL and S3-compatible object storage.
 * @module
 */
export * from "./clock.js";
export * from "./errors.js";
export * from "./sql/index.js";
