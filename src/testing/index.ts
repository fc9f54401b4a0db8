export {};
export * from "./object-store-contract.js";
export * from "./kv-conformance.js";
export * from "./kv-benchmarks.js";
