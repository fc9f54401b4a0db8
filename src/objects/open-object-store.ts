import { fileURLToPath } from "node:url";
import { InvalidArgumentError } from "../errors.js";
import { FileObjectStore } from "./file-object-store.js";
import { MemoryObjectStore } from "./memory-object-store.js";
import type { ObjectStore } from "./object-store.js";
import { loadS3Sdk, S3ObjectStore } from "./s3-object-store.js";

/** Options of {@link openObjectStore}. */
export interface OpenObjectStoreOptions {
  /** Where `AWS_*` fallbacks are read from. Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

const SCHEME = /^([a-z][a-z0-9+.-]+):/i;

/**
 * Opens an {@link ObjectStore} from a URL (the server's `--objects` flag):
 * - `memory:` -> {@link MemoryObjectStore};
 * - `file:///var/lib/storeroom/objects` or a plain path (`./objects`) -> {@link FileObjectStore};
 * - `s3://bucket?endpoint=http://127.0.0.1:9000&region=us-east-1&forcePathStyle=true` ->
 *   {@link S3ObjectStore}. Credentials come from `accessKeyId`/`secretAccessKey`/`sessionToken`
 *   query parameters, else `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`,
 *   else the SDK's default chain; `region` falls back to `AWS_REGION`/`AWS_DEFAULT_REGION` then
 *   `us-east-1`, `endpoint` to `AWS_ENDPOINT_URL_S3`/`AWS_ENDPOINT_URL`.
 *
 * Every form accepts `partSize` (bytes) as a query parameter. Anything else, an unknown
 * scheme, or an S3 URL with a path after the bucket -> {@link InvalidArgumentError}.
 *
 * @example
 * ```ts
 * const objects = await openObjectStore("s3://uploads?endpoint=http://127.0.0.1:9000&forcePathStyle=true");
 * ```
 */
export async function openObjectStore(url: string, options: OpenObjectStoreOptions = {}): Promise<ObjectStore> {
  const op = "objects.open";
  if (typeof url !== "string" || url.trim() === "") throw new InvalidArgumentError("object store URL is empty", { op });
  const scheme = SCHEME.exec(url)?.[1]?.toLowerCase();
  if (scheme === undefined) return new FileObjectStore({ root: url });
  const parsed = parseUrl(url, op);
  const query = new QueryReader(parsed.searchParams, op);
  const env = options.env ?? process.env;
  let store: ObjectStore;
  if (scheme === "memory") {
    const partSize = query.size("partSize");
    store = new MemoryObjectStore(partSize === undefined ? {} : { partSize });
  } else if (scheme === "file") {
    const partSize = query.size("partSize");
    store = new FileObjectStore({
      root: fileURLToPath(new URL(parsed.pathname, "file://")),
      ...(partSize === undefined ? {} : { partSize }),
    });
  } else if (scheme === "s3") {
    store = openS3(parsed, query, env, op);
  } else {
    throw new InvalidArgumentError(
      `unsupported object store URL scheme "${scheme}:" (use memory:, file:, s3: or a path)`,
      { op },
    );
  }
  query.assertAllRead();
  // A missing AWS SDK is reported here, by name, rather than on the first call.
  if (store instanceof S3ObjectStore) await loadS3Sdk();
  return store;
}

function openS3(
  parsed: URL,
  query: QueryReader,
  env: OpenObjectStoreOptions["env"] & object,
  op: string,
): S3ObjectStore {
  const bucket = decodeURIComponent(parsed.hostname);
  if (bucket === "") throw new InvalidArgumentError("s3:// URL needs a bucket: s3://<bucket>?...", { op });
  if (parsed.pathname !== "" && parsed.pathname !== "/") {
    throw new InvalidArgumentError("s3:// URLs name a bucket only; key prefixes are not supported", { op });
  }
  const accessKeyId = query.string("accessKeyId") ?? env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = query.string("secretAccessKey") ?? env.AWS_SECRET_ACCESS_KEY;
  const sessionToken = query.string("sessionToken") ?? env.AWS_SESSION_TOKEN;
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
    throw new InvalidArgumentError("S3 credentials need both an access key id and a secret access key", { op });
  }
  const endpoint = query.string("endpoint") ?? env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
  const partSize = query.size("partSize");
  const maxPartCount = query.size("maxPartCount");
  return new S3ObjectStore({
    bucket,
    region: query.string("region") ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? "us-east-1",
    forcePathStyle: query.boolean("forcePathStyle") ?? false,
    ...(endpoint === undefined ? {} : { endpoint }),
    ...(accessKeyId === undefined || secretAccessKey === undefined
      ? {}
      : { credentials: { accessKeyId, secretAccessKey, ...(sessionToken === undefined ? {} : { sessionToken }) } }),
    ...(partSize === undefined ? {} : { partSize }),
    ...(maxPartCount === undefined ? {} : { maxPartCount }),
  });
}

function parseUrl(url: string, op: string): URL {
  try {
    return new URL(url);
  } catch (err) {
    throw new InvalidArgumentError(`not a valid object store URL: ${url}`, { op, cause: err });
  }
}

/** Reads query parameters and remembers which ones were used, so typos are reported. */
class QueryReader {
  readonly #params: URLSearchParams;
  readonly #op: string;
  readonly #read = new Set<string>();

  constructor(params: URLSearchParams, op: string) {
    this.#params = params;
    this.#op = op;
  }

  string(name: string): string | undefined {
    this.#read.add(name);
    const value = this.#params.get(name);
    return value === null || value === "" ? undefined : value;
  }

  size(name: string): number | undefined {
    const value = this.string(name);
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 1)
      throw new InvalidArgumentError(`${name} must be a positive integer, got "${value}"`, { op: this.#op });
    return n;
  }

  boolean(name: string): boolean | undefined {
    const value = this.string(name);
    if (value === undefined) return undefined;
    if (value === "true" || value === "1") return true;
    if (value === "false" || value === "0") return false;
    throw new InvalidArgumentError(`${name} must be true or false, got "${value}"`, { op: this.#op });
  }

  assertAllRead(): void {
    const unknown = [...new Set(this.#params.keys())].filter((name) => !this.#read.has(name));
    if (unknown.length > 0)
      throw new InvalidArgumentError(`unknown object store URL parameter(s): ${unknown.join(", ")}`, { op: this.#op });
  }
}
