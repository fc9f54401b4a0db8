export * from "./file-object-store.js";
export * from "./memory-object-store.js";
export { assertObjectKey, MAX_OBJECT_KEY_BYTES } from "./object-key.js";
export * from "./object-store.js";
export * from "./open-object-store.js";
export * from "./s3-object-store.js";
