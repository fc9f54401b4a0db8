import { createServer, type IncomingHttpHeaders, type IncomingMessage, request, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Mutex } from "../../src/internal/mutex.js";

/**
 * TEST-ONLY S3 fidelity layer in front of s3rver. s3rver ignores `If-Match`/`If-None-Match`
 * and barely checks multipart uploads (no ListParts, no AbortMultipartUpload, no etag or order
 * checks, parts accepted after completion). Real S3 does all of that, so this proxy stands in
 * for it:
 * - conditional writes: a PUT or CompleteMultipartUpload carrying `If-Match`/`If-None-Match`
 *   HEADs the object on s3rver first and answers 412 PreconditionFailed when the condition
 *   fails; writes (conditional or not) and deletes are serialised per key while the check and
 *   the forwarded write run, so check-then-write is atomic; a Complete refused with 412
 *   leaves its upload open (it can be completed again or aborted);
 * - multipart: tracks uploads started through it; UploadPart, ListParts, Complete and Abort
 *   on an unknown or finished upload answer 404 NoSuchUpload; Complete checks part order
 *   (InvalidPartOrder) and etags (InvalidPart); ListParts and Abort are answered here.
 * - listing: s3rver lists in filesystem order (not UTF-8 key order) and its continuation
 *   tokens use DES, which Node's OpenSSL 3 refuses (InternalError); ListObjectsV2 is answered
 *   here from one full unsigned s3rver listing, sorted by UTF-8 bytes and paginated with an
 *   opaque token, as S3 does.
 * It does not enforce S3's 5 MiB minimum part size (tests use small parts).
 * Requests are forwarded byte for byte with their original headers, so SigV4 signatures
 * (which cover the Host header) still verify on s3rver.
 */
export interface ConditionalS3Proxy {
  /** `http://127.0.0.1:<port>`: use it as the S3 endpoint. */
  readonly endpoint: string;
  /** Conditional writes refused with 412, and multipart requests refused as S3 would. */
  readonly stats: { preconditionFailed: number; noSuchUpload: number; invalidPart: number };
  /**
   * From now on, records every single-request PUT that takes effect on a key `match` accepts,
   * with its body, in the order they took effect (exact per key: writes to a key are serialised).
   * The returned array grows until the proxy stops.
   */
  recordPuts(match: (key: string) => boolean): RecordedPut[];
  /** Closes the proxy. Idempotent. */
  stop(): Promise<void>;
}

/** A PUT that took effect, as {@link ConditionalS3Proxy.recordPuts} saw it. */
export interface RecordedPut {
  readonly key: string;
  readonly body: Buffer;
}

interface Upload {
  readonly key: string;
  readonly parts: Map<number, { etag: string; size: number; modified: Date }>;
}

interface Buffered {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** Starts the proxy on 127.0.0.1 (random port) in front of the s3rver at `target`. */
export async function startConditionalS3Proxy(target: string): Promise<ConditionalS3Proxy> {
  const targetUrl = new URL(target);
  const locks = new Map<string, Mutex>();
  const uploads = new Map<string, Upload>();
  const stats = { preconditionFailed: 0, noSuchUpload: 0, invalidPart: 0 };
  const recorders: { match: (key: string) => boolean; puts: RecordedPut[] }[] = [];

  const forward = (req: IncomingMessage, body: Buffer | IncomingMessage | Transform): Promise<Buffered> =>
    new Promise((resolve, reject) => {
      const out = request(
        {
          host: targetUrl.hostname,
          port: targetUrl.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
          // A connection per request: a kept-alive one can be closed by s3rver's idle timeout just
          // as a request goes out on it, and a write it applied would then be answered with an error.
          agent: false,
        },
        async (res) => {
          try {
            const chunks: Buffer[] = [];
            for await (const chunk of res) chunks.push(chunk as Buffer);
            resolve({ status: res.statusCode ?? 500, headers: res.headers, body: Buffer.concat(chunks) });
          } catch (err) {
            // An aborted response fails this request instead of leaving it (and its key's lock) pending.
            reject(err);
          }
        },
      );
      out.on("error", reject);
      if (Buffer.isBuffer(body)) out.end(body);
      else pipeline(body, out).catch(reject);
    });

  const currentEtag = async (path: string): Promise<string | null> => {
    const res = await fetch(new URL(path, targetUrl), { method: "HEAD" });
    if (res.status === 404) return null;
    if (!res.ok) throw new Error(`HEAD ${path} answered ${res.status}`);
    return clean(res.headers.get("etag") ?? "");
  };

  const conditionFails = async (req: IncomingMessage, objectPath: string): Promise<boolean> => {
    const ifMatch = header(req, "if-match");
    const ifNoneMatch = header(req, "if-none-match");
    if (ifMatch === undefined && ifNoneMatch === undefined) return false;
    const etag = await currentEtag(objectPath);
    if (ifNoneMatch !== undefined && etag !== null && (ifNoneMatch === "*" || clean(ifNoneMatch) === etag)) return true;
    return ifMatch !== undefined && (etag === null || clean(ifMatch) !== etag);
  };

  const withKey = async <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    let mutex = locks.get(key);
    if (!mutex) {
      mutex = new Mutex();
      locks.set(key, mutex);
    }
    return mutex.run(fn);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://proxy");
    const [, bucket = "", ...rest] = url.pathname.split("/");
    const key = decodeURIComponent(rest.join("/"));
    const objectPath = `/${bucket}/${rest.join("/")}`;
    const uploadId = url.searchParams.get("uploadId");
    const upload = uploadId === null ? undefined : uploads.get(uploadId);
    const known = upload !== undefined && upload.key === key;
    const noSuchUpload = async () => {
      stats.noSuchUpload++;
      await drain(req);
      sendError(res, 404, "NoSuchUpload", "The specified upload does not exist.");
    };

    if (key === "" && req.method === "GET" && url.searchParams.get("list-type") === "2") {
      await drain(req);
      return sendListing(res, targetUrl, bucket, url.searchParams);
    }
    if (key === "" || req.headers["x-amz-copy-source"] !== undefined) return send(res, await forward(req, req));

    if (req.method === "POST" && url.searchParams.has("uploads")) {
      const answer = await forward(req, req);
      const id = /<UploadId>([^<]+)<\/UploadId>/.exec(answer.body.toString("utf8"))?.[1];
      if (answer.status === 200 && id) uploads.set(id, { key, parts: new Map() });
      return send(res, answer);
    }

    if (uploadId !== null) {
      if (!known) return noSuchUpload();
      const partNumber = Number(url.searchParams.get("partNumber"));
      if (req.method === "PUT") {
        // Like S3, a part whose body did not arrive whole (the client gave up) is not kept: s3rver
        // would store what arrived, so only a complete body is forwarded.
        const body = await collect(req);
        const size = body.byteLength;
        const answer = await forward(req, body);
        // The upload may have been completed or aborted while the part streamed in.
        if (!uploads.has(uploadId)) return noSuchUpload();
        if (answer.status === 200) {
          upload.parts.set(partNumber, { etag: clean(String(answer.headers.etag ?? "")), size, modified: new Date() });
        }
        return send(res, answer);
      }
      if (req.method === "GET") return sendListParts(res, bucket, key, uploadId, upload, url.searchParams);
      if (req.method === "DELETE") {
        uploads.delete(uploadId);
        await drain(req);
        res.writeHead(204).end();
        return;
      }
      if (req.method === "POST") {
        const body = await collect(req);
        return withKey(key, async () => {
          if (!uploads.has(uploadId)) return noSuchUpload();
          const listed = [...body.toString("utf8").matchAll(/<Part>([\s\S]*?)<\/Part>/g)].map((m) => ({
            number: Number(/<PartNumber>(\d+)<\/PartNumber>/.exec(m[1] ?? "")?.[1]),
            etag: clean(/<ETag>([\s\S]*?)<\/ETag>/.exec(m[1] ?? "")?.[1] ?? ""),
          }));
          if (listed.some((p, i) => i > 0 && p.number <= (listed[i - 1]?.number ?? 0))) {
            stats.invalidPart++;
            return sendError(res, 400, "InvalidPartOrder", "The list of parts was not in ascending order.");
          }
          if (listed.length === 0 || listed.some((p) => upload.parts.get(p.number)?.etag !== p.etag)) {
            stats.invalidPart++;
            return sendError(res, 400, "InvalidPart", "One or more of the specified parts could not be found.");
          }
          if (await conditionFails(req, objectPath)) {
            stats.preconditionFailed++;
            return sendError(
              res,
              412,
              "PreconditionFailed",
              "At least one of the preconditions you specified did not hold.",
            );
          }
          const answer = await forward(req, body);
          if (answer.status === 200) uploads.delete(uploadId);
          return send(res, answer);
        });
      }
    }

    if (req.method === "PUT" || req.method === "DELETE") {
      const body = await collect(req);
      return withKey(key, async () => {
        if (req.method === "PUT" && (await conditionFails(req, objectPath))) {
          stats.preconditionFailed++;
          return sendError(
            res,
            412,
            "PreconditionFailed",
            "At least one of the preconditions you specified did not hold.",
          );
        }
        const answer = await forward(req, body);
        if (req.method === "PUT" && answer.status === 200) {
          for (const r of recorders) if (r.match(key)) r.puts.push({ key, body });
        }
        return send(res, answer);
      });
    }
    return send(res, await forward(req, req), req.method === "HEAD");
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendError(res, 500, "InternalError", String(err));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  let stopped = false;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stats,
    recordPuts(match) {
      const puts: RecordedPut[] = [];
      recorders.push({ match, puts });
      return puts;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function clean(etag: string): string {
  return etag
    .replace(/&quot;/g, "")
    .replace(/&#34;/g, "")
    .replace(/"/g, "")
    .trim();
}

async function collect(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function drain(req: IncomingMessage): Promise<void> {
  for await (const _ of req);
}

function send(res: ServerResponse, answer: Buffered, head = false): void {
  const headers = { ...answer.headers };
  delete headers["transfer-encoding"];
  if (!head) headers["content-length"] = String(answer.body.byteLength);
  res.writeHead(answer.status, headers).end(answer.body);
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
  res.writeHead(status, { "content-type": "application/xml", "content-length": Buffer.byteLength(body) }).end(body);
}

function sendListParts(
  res: ServerResponse,
  bucket: string,
  key: string,
  uploadId: string,
  upload: Upload,
  query: URLSearchParams,
): void {
  const marker = Number(query.get("part-number-marker") ?? 0);
  const max = Number(query.get("max-parts") ?? 1000);
  const all = [...upload.parts.entries()].filter(([n]) => n > marker).sort(([a], [b]) => a - b);
  const page = all.slice(0, max);
  const last = page[page.length - 1]?.[0] ?? marker;
  const body =
    `<?xml version="1.0" encoding="UTF-8"?>\n<ListPartsResult><Bucket>${xmlEscape(bucket)}</Bucket><Key>${xmlEscape(key)}</Key>` +
    `<UploadId>${uploadId}</UploadId><PartNumberMarker>${marker}</PartNumberMarker><NextPartNumberMarker>${last}</NextPartNumberMarker>` +
    `<MaxParts>${max}</MaxParts><IsTruncated>${all.length > page.length}</IsTruncated>` +
    page
      .map(
        ([n, p]) =>
          `<Part><PartNumber>${n}</PartNumber><LastModified>${p.modified.toISOString()}</LastModified><ETag>"${p.etag}"</ETag><Size>${p.size}</Size></Part>`,
      )
      .join("") +
    "</ListPartsResult>";
  res.writeHead(200, { "content-type": "application/xml", "content-length": Buffer.byteLength(body) }).end(body);
}

const xmlEscape = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const xmlUnescape = (s: string) =>
  s
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&#(\d+);/g, (_, n: string) => String.fromCodePoint(Number(n)))
    .replace(/&amp;/g, "&");

async function sendListing(res: ServerResponse, target: URL, bucket: string, query: URLSearchParams): Promise<void> {
  const prefix = query.get("prefix") ?? "";
  const max = Math.min(Number(query.get("max-keys") ?? 1000), 1000);
  const token = query.get("continuation-token");
  const after = token !== null ? Buffer.from(token, "base64url").toString("utf8") : (query.get("start-after") ?? "");
  const full = new URL(`/${bucket}`, target);
  full.searchParams.set("prefix", prefix);
  full.searchParams.set("max-keys", "2147483647");
  const answer = await fetch(full);
  const xml = await answer.text();
  if (!answer.ok) {
    res.writeHead(answer.status, { "content-type": "application/xml" }).end(xml);
    return;
  }
  const entries = [...xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)]
    .map((m) => {
      const field = (name: string) =>
        xmlUnescape(new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(m[1] ?? "")?.[1] ?? "");
      return { key: field("Key"), modified: field("LastModified"), etag: field("ETag"), size: field("Size") };
    })
    .filter((e) => e.key.startsWith(prefix) && Buffer.compare(Buffer.from(e.key), Buffer.from(after)) > 0)
    .sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
  const page = entries.slice(0, max);
  const truncated = entries.length > page.length;
  const next = truncated ? Buffer.from(page[page.length - 1]?.key ?? "").toString("base64url") : undefined;
  const body =
    `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult><Name>${xmlEscape(bucket)}</Name><Prefix>${xmlEscape(prefix)}</Prefix>` +
    `<MaxKeys>${max}</MaxKeys><KeyCount>${page.length}</KeyCount><IsTruncated>${truncated}</IsTruncated>` +
    (token === null ? "" : `<ContinuationToken>${xmlEscape(token)}</ContinuationToken>`) +
    (next === undefined ? "" : `<NextContinuationToken>${next}</NextContinuationToken>`) +
    page
      .map(
        (e) =>
          `<Contents><Key>${xmlEscape(e.key)}</Key><LastModified>${e.modified}</LastModified><ETag>${xmlEscape(e.etag)}</ETag><Size>${e.size}</Size><StorageClass>STANDARD</StorageClass></Contents>`,
      )
      .join("") +
    "</ListBucketResult>";
  res.writeHead(200, { "content-type": "application/xml", "content-length": Buffer.byteLength(body) }).end(body);
}
