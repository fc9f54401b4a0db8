import { storeroomDriver } from "./storeroom-driver.js";

export {
  type StoreroomDriver,
  type StoreroomDriverCallOptions,
  type StoreroomDriverOptions,
  type StoreroomItemMeta,
  storeroomDriver,
} from "./storeroom-driver.js";

/** The driver factory, default-exported as unstorage drivers are. */
export default storeroomDriver;
