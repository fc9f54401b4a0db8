export * from "./executor-contract.js";
export * from "./kv-benchmarks.js";
export * from "./kv-conformance.js";
export * from "./object-store-contract.js";
