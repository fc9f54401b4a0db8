import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CorruptDatabaseError } from "../../src/errors.js";
import {
  decodeManifest,
  decodePack,
  encodeManifest,
  MANIFEST_FORMAT,
  type Manifest,
} from "../../src/tenants/manifest.js";

const count = fc.nat({ max: 2 ** 40 });
const hex = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString("hex"));
const name = (dir: string) => fc.stringMatching(/^[A-Za-z0-9._-]{1,40}$/).map((n) => `${dir}/${n}`);

const logItem = fc
  .record({
    level: fc.nat(4),
    key: fc.oneof(name("segments"), name("packs")),
    first: count,
    span: fc.nat(1000),
    bytes: count,
    count: count,
    time: count,
    sha256: hex,
  })
  .map(({ span, ...item }) => ({ ...item, last: item.first + span }));

const manifest: fc.Arbitrary<Manifest> = fc.record({
  format: fc.constant(MANIFEST_FORMAT),
  generation: fc.string({ minLength: 1, maxLength: 20 }),
  epoch: count,
  writer: fc.string({ minLength: 1, maxLength: 20 }),
  pageSize: fc.constantFrom(512, 4096, 65536),
  txid: count,
  pages: count,
  time: count,
  position: fc.option(
    fc.record({ salt1: count, salt2: count, seq: count, offset: count, checksum1: count, checksum2: count }),
    { nil: null },
  ),
  snapshots: fc.array(
    fc.record({
      key: name("snapshots"),
      txid: count,
      pages: count,
      bytes: count,
      sha256: hex,
      time: count,
      generation: fc.string({ maxLength: 20 }),
    }),
    { minLength: 1, maxLength: 4 },
  ),
  log: fc.array(logItem, { maxLength: 16 }),
  sinceSnapshot: fc.record({ bytes: count, count: count }),
});

/** Every path to a leaf value of `value` (object keys and array indexes). */
function leaves(value: unknown, path: (string | number)[] = []): (string | number)[][] {
  if (value === null || typeof value !== "object") return [path];
  return Object.entries(value).flatMap(([k, v]) => leaves(v, [...path, Array.isArray(value) ? Number(k) : k]));
}

function withLeaf(value: unknown, path: (string | number)[], leaf: unknown): unknown {
  const copy = structuredClone(value) as Record<string | number, unknown>;
  let at = copy;
  for (const step of path.slice(0, -1)) at = at[step] as Record<string | number, unknown>;
  at[path[path.length - 1] as string | number] = leaf;
  return copy;
}

describe("manifest encoding", () => {
  it("round-trips every well-formed manifest and pack", () => {
    fc.assert(
      fc.property(manifest, (m) => {
        expect(decodeManifest(encodeManifest(m), "manifest")).toEqual(m);
        if (m.log.length > 0) expect(decodePack(Buffer.from(JSON.stringify(m.log)), "pack")).toEqual(m.log);
      }),
    );
  });

  it("refuses with CorruptDatabaseError a manifest with any one value of the wrong kind, or cut short", () => {
    fc.assert(
      fc.property(
        manifest,
        fc.nat(),
        fc.constantFrom<unknown>(-1, 1.5, "7", null, [], {}, "../x", Number.MAX_SAFE_INTEGER * 2),
        fc.nat(),
        (m, pick, wrong, cut) => {
          // Paths whose every value is valid: the generation and writer ids take any string, a position may be null.
          const paths = leaves(m).filter((p) => {
            const last = p[p.length - 1];
            return !(last === "generation" || last === "writer" || (p[0] === "position" && wrong === null));
          });
          const path = paths[pick % paths.length] as (string | number)[];
          const current = path.reduce<unknown>((v, step) => (v as Record<string | number, unknown>)[step], m);
          fc.pre(JSON.stringify(current) !== JSON.stringify(wrong));
          // A string where a key is expected is only wrong when it is not a key of the right folder.
          fc.pre(
            !(
              typeof wrong === "string" &&
              path[path.length - 1] === "key" &&
              /^(snapshots|segments|packs)\//.test(wrong)
            ),
          );
          const damaged = Buffer.from(JSON.stringify(withLeaf(m, path, wrong)));
          expect(() => decodeManifest(damaged, "manifest")).toThrow(CorruptDatabaseError);
          const bytes = encodeManifest(m);
          expect(() => decodeManifest(bytes.subarray(0, cut % bytes.byteLength), "manifest")).toThrow(
            CorruptDatabaseError,
          );
        },
      ),
    );
    expect(() => decodeManifest(Buffer.from("[]"), "manifest")).toThrow(CorruptDatabaseError);
    expect(() => decodePack(Buffer.from("[]"), "pack")).toThrow(CorruptDatabaseError);
  });
});
