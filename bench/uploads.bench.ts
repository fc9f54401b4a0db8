import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { open, rename, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import BetterSqlite3 from "better-sqlite3";
import pg from "pg";
import { better, defineQueue } from "plainjob";
import { ManualClock } from "../src/clock.js";
import { FileObjectStore, type ObjectStore, S3ObjectStore } from "../src/objects/index.js";
import { type Database, openPostgres, openSqlite } from "../src/sql/index.js";
import { DeleteQueue, UploadService, uploadsMigrations } from "../src/uploads/index.js";
import { startProxiedS3rver } from "../test/support/s3rver.js";
import { type BenchCase, runSuite } from "./harness.js";

const LEASE = 100;
const REFILL = 20_000;
const NOW = 1_000_000;
const MiB = 1024 * 1024;

const LEASE_SQL = `UPDATE storeroom_pending_deletes SET next_attempt_at = $1
  WHERE id IN (SELECT id FROM storeroom_pending_deletes WHERE next_attempt_at <= $2
               ORDER BY next_attempt_at, id LIMIT $3__LOCK__)
  RETURNING id, object_key, upload_id, reason, attempts, next_attempt_at, created_at, last_error`;
const doneSql = (n: number, q: (i: number) => string) =>
  `DELETE FROM storeroom_pending_deletes WHERE id IN (${Array.from({ length: n }, (_, i) => q(i + 1)).join(", ")})`;

let serial = 0;
/** Resources of cases that must be released after the suite. */
const closeLater: (() => Promise<unknown>)[] = [];
const quiet = { error: () => {}, warn: () => {}, info: () => {}, debug: () => {} };
const freshKeys = (n: number) => Array.from({ length: n }, () => `priv/2026/01/01/bench-${serial++}.bin`);

/** storeroom's DeleteQueue: lease 100 rows, then done(ids); refills (rarely) when the queue runs low. */
function oursLeaseDone(db: Database, group: string, name: string): BenchCase {
  const queue = new DeleteQueue({ database: db, clock: new ManualClock(NOW) });
  return {
    group,
    name,
    role: "ours",
    batch: LEASE,
    fn: async () => {
      let rows = await queue.lease(NOW, LEASE, 60_000);
      if (rows.length < LEASE) {
        await queue.schedule(freshKeys(REFILL), "deleted");
        rows = await queue.lease(NOW, LEASE, 60_000);
      }
      await queue.done(rows.map((r) => r.id));
    },
  };
}

/** The same two statements on bare better-sqlite3 (lease in BEGIN IMMEDIATE, then the DELETE). */
function rawSqliteLeaseDone(path: string, group: string): BenchCase {
  const db = new BetterSqlite3(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  const lease = db.prepare(LEASE_SQL.replace("__LOCK__", "").replaceAll(/\$\d+/g, "?"));
  const done = db.prepare(doneSql(LEASE, () => "?"));
  const insert = db.prepare(
    "INSERT INTO storeroom_pending_deletes (id, object_key, reason, next_attempt_at, created_at) VALUES (?, ?, 'deleted', ?, ?) ON CONFLICT DO NOTHING",
  );
  const leaseTx = db.transaction(() => lease.all(NOW + 60_000, NOW, LEASE) as { id: string }[]);
  const refill = db.transaction(() => {
    for (const key of freshKeys(REFILL)) insert.run(key, key, NOW, NOW);
  });
  return {
    group,
    name: "raw better-sqlite3 lease + done",
    role: "raw",
    batch: LEASE,
    fn: () => {
      let rows = leaseTx.immediate();
      if (rows.length < LEASE) {
        refill();
        rows = leaseTx.immediate();
      }
      done.run(...rows.map((r) => r.id));
    },
  };
}

/** plainjob (SQLite job queue on better-sqlite3): fetch-and-mark-processing + markJobAsDone per job. */
function plainjobLeaseDone(path: string, group: string): BenchCase {
  const queue = defineQueue({ connection: better(new BetterSqlite3(path)), logger: quiet });
  closeLater.push(async () => queue.close());
  return {
    group,
    name: "plainjob getAndMarkJobAsProcessing + markJobAsDone",
    role: "peer",
    batch: LEASE,
    fn: () => {
      for (let i = 0; i < LEASE; i++) {
        let job = queue.getAndMarkJobAsProcessing("delete");
        if (job === undefined) {
          queue.addMany("delete", freshKeys(REFILL));
          job = queue.getAndMarkJobAsProcessing("delete");
        }
        if (job !== undefined) queue.markJobAsDone(job.id);
      }
    },
  };
}

function rawPostgresLeaseDone(pool: pg.Pool, group: string): BenchCase {
  const lease = LEASE_SQL.replace("__LOCK__", " FOR UPDATE SKIP LOCKED");
  const done = doneSql(LEASE, (i) => `$${i}`);
  const leaseOnce = async () => {
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      const { rows } = await client.query<{ id: string }>({
        name: "bench_lease",
        text: lease,
        values: [NOW + 60_000, NOW, LEASE],
      });
      await client.query("COMMIT");
      return rows;
    } finally {
      client.release();
    }
  };
  return {
    group,
    name: "raw pg lease + done",
    role: "raw",
    batch: LEASE,
    fn: async () => {
      let rows = await leaseOnce();
      if (rows.length < LEASE) {
        const keys = freshKeys(REFILL);
        await pool.query(
          "INSERT INTO storeroom_pending_deletes (id, object_key, reason, next_attempt_at, created_at) SELECT k, k, 'deleted', $2, $2 FROM unnest($1::text[]) AS k",
          [keys, NOW],
        );
        rows = await leaseOnce();
      }
      await pool.query({ name: "bench_done", text: done, values: rows.map((r) => r.id) });
    },
  };
}

/** One whole upload of `data` through UploadService (parts in parallel), then abort to free the space. */
function serviceUpload(service: UploadService, data: Buffer, group: string, name: string): BenchCase {
  return {
    group,
    name,
    role: "ours",
    fn: async () => {
      const init = await service.initUpload("bench", { filename: "bench.bin", size: data.length });
      await Promise.all(
        Array.from({ length: init.partCount }, (_, i) =>
          service.uploadPart("bench", {
            claimId: init.claimId,
            partNumber: i + 1,
            body: data.subarray(i * init.partSize, (i + 1) * init.partSize),
          }),
        ),
      );
      await service.completeUpload("bench", init.claimId);
      await service.abortUpload("bench", init.claimId);
    },
  };
}

/** The same multipart upload straight on the ObjectStore, without any bookkeeping. */
function storeUpload(objects: ObjectStore, data: Buffer, partSize: number, group: string, name: string): BenchCase {
  return {
    group,
    name,
    role: "raw",
    fn: async () => {
      const key = freshKeys(1)[0] as string;
      const uploadId = await objects.initMultipart(key);
      const parts = await Promise.all(
        Array.from({ length: Math.ceil(data.length / partSize) }, async (_, i) => {
          const { etag } = await objects.putPart(key, uploadId, i + 1, data.subarray(i * partSize, (i + 1) * partSize));
          return { partNumber: i + 1, etag };
        }),
      );
      await objects.completeMultipart(key, uploadId, parts);
      await objects.delete(key);
    },
  };
}

export default async function uploadsBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "storeroom-bench-uploads-"));
  const closers: (() => Promise<unknown>)[] = [];
  try {
    const cases: BenchCase[] = [];

    const sqlite = await openSqlite(join(dir, "queue.db"));
    closers.push(() => sqlite.close());
    await sqlite.migrate(uploadsMigrations);
    const rawDb = join(dir, "raw.db");
    const rawSetup = await openSqlite(rawDb);
    await rawSetup.migrate(uploadsMigrations);
    await rawSetup.close();
    cases.push(
      oursLeaseDone(sqlite, "sqlite delete queue lease+done (rows)", "storeroom DeleteQueue lease + done"),
      rawSqliteLeaseDone(rawDb, "sqlite delete queue lease+done (rows)"),
      plainjobLeaseDone(join(dir, "plainjob.db"), "sqlite delete queue lease+done (rows)"),
    );

    const url = process.env.POSTGRES_URL;
    if (url) {
      const schema = `bench_uploads_${process.pid}`;
      const pgdb = await openPostgres(url, { schema });
      await pgdb.migrate(uploadsMigrations);
      const pool = new pg.Pool({ connectionString: url, options: `-c search_path=${schema}_raw`, max: 4 });
      await pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}_raw`);
      const rawPg = await openPostgres(url, { schema: `${schema}_raw` });
      await rawPg.migrate(uploadsMigrations);
      await rawPg.close();
      closers.push(async () => {
        await pgdb.run(`DROP SCHEMA ${schema} CASCADE`);
        await pgdb.close();
        await pool.query(`DROP SCHEMA ${schema}_raw CASCADE`);
        await pool.end();
      });
      cases.push(
        oursLeaseDone(pgdb, "postgres delete queue lease+done (rows)", "storeroom DeleteQueue lease + done"),
        rawPostgresLeaseDone(pool, "postgres delete queue lease+done (rows)"),
      );
    } else {
      console.warn("POSTGRES_URL is not set: PostgreSQL cases skipped");
    }

    const fileData = randomBytes(8 * MiB);
    const files = new FileObjectStore({ root: join(dir, "objects"), partSize: 4 * MiB });
    const fileDb = await openSqlite(join(dir, "files.db"));
    closers.push(() => fileDb.close());
    await fileDb.migrate(uploadsMigrations);
    const fileGroup = "upload 8 MiB to the filesystem (2 x 4 MiB parts)";
    cases.push(
      serviceUpload(
        new UploadService({ database: fileDb, objects: files }),
        fileData,
        fileGroup,
        "storeroom UploadService",
      ),
      storeUpload(files, fileData, 4 * MiB, fileGroup, "FileObjectStore multipart, no bookkeeping"),
      {
        group: fileGroup,
        name: "fs write + fsync + rename (one file, no parts)",
        role: "peer",
        fn: async () => {
          const tmp = join(dir, `raw-${serial++}.tmp`);
          const handle = await open(tmp, "w");
          await handle.writeFile(fileData);
          await handle.sync();
          await handle.close();
          await rename(tmp, `${tmp}.bin`);
          await unlink(`${tmp}.bin`);
        },
      },
    );

    // s3rver lacks ListParts/Abort; multipart traffic (ours and lib-storage alike) goes through the test proxy.
    const s3 = await startProxiedS3rver();
    closers.push(() => s3.stop());
    const s3Data = randomBytes(10 * MiB);
    const s3Objects = new S3ObjectStore({ ...s3.storeOptions, partSize: 5 * MiB });
    closers.push(() => s3Objects.close());
    const s3Db = await openSqlite(join(dir, "s3.db"));
    closers.push(() => s3Db.close());
    await s3Db.migrate(uploadsMigrations);
    const client = new S3Client({
      endpoint: s3.storeOptions.endpoint,
      region: s3.storeOptions.region,
      credentials: s3.storeOptions.credentials,
      forcePathStyle: true,
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    });
    closers.push(async () => client.destroy());
    const s3Group = "upload 10 MiB to s3rver (2 x 5 MiB parts)";
    cases.push(
      serviceUpload(
        new UploadService({ database: s3Db, objects: s3Objects }),
        s3Data,
        s3Group,
        "storeroom UploadService",
      ),
      storeUpload(s3Objects, s3Data, 5 * MiB, s3Group, "S3ObjectStore multipart, no bookkeeping"),
      {
        group: s3Group,
        name: "@aws-sdk/lib-storage Upload",
        role: "peer",
        fn: async () => {
          const key = freshKeys(1)[0] as string;
          await new Upload({
            client,
            params: { Bucket: s3.storeOptions.bucket, Key: key, Body: s3Data },
            partSize: 5 * MiB,
            queueSize: 2,
          }).done();
          await s3Objects.delete(key);
        },
      },
    );

    if (process.env.BENCH_ONLY)
      cases.splice(0, cases.length, ...cases.filter((c) => c.group.includes(process.env.BENCH_ONLY as string)));
    await runSuite("uploads", cases);
  } finally {
    for (const close of [...closeLater.splice(0), ...closers.reverse()])
      await close().catch((err) => console.warn(err));
    rmSync(dir, { recursive: true, force: true });
  }
}
