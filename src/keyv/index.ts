export { KeyvStoreroom, type KeyvStoreroomEntry, type KeyvStoreroomOptions } from "./keyv-storeroom.js";
