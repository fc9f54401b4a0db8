export {};
export * from "./object-store-contract.js";
export * from "./kv-conformance.js";
