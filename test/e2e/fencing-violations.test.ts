import { describe, expect, it } from "vitest";
import type { LogItem, Manifest } from "../../src/tenants/manifest.js";
import { fencingViolations } from "./fencing-violations.js";

const key = "tenants/acme/org/manifest.json";
const segment = (first: number, last: number): LogItem => ({
  level: 0,
  key: `segments/${first}-${last}`,
  first,
  last,
  bytes: 1,
  count: 1,
  time: 0,
  sha256: "",
});
const manifest = (epoch: number, writer: string, log: LogItem[]): Manifest => ({
  format: 1,
  generation: "g",
  epoch,
  writer,
  pageSize: 4096,
  txid: log.at(-1)?.last ?? 0,
  pages: 1,
  time: 0,
  position: null,
  snapshots: [],
  log,
  sinceSnapshot: { bytes: 0, count: 0 },
});
const judge = (...history: Manifest[]) =>
  fencingViolations(
    history.map((m) => ({ key, body: Buffer.from(JSON.stringify(m)) })),
    new Map([[key, history.at(-1)?.log ?? []]]),
  );

describe("fencingViolations", () => {
  const a1 = manifest(1, "a", [segment(1, 2)]);
  const a2 = manifest(1, "a", [segment(1, 2), segment(3, 4)]);

  it("accepts a history where each takeover raised the epoch and continued where the last writer stopped", () => {
    const { violations, counts } = judge(a1, a2, manifest(2, "b", [segment(1, 2), segment(3, 4), segment(5, 5)]));
    expect(violations).toEqual([]);
    expect(counts).toEqual({ tenants: 1, manifests: 3, handovers: 1 });
  });

  it("flags two writers in one epoch, an epoch or txid going back, gaps and overlaps", () => {
    expect(judge(a1, manifest(1, "b", [segment(1, 2), segment(3, 3)])).violations.join("\n")).toMatch(
      /epoch 1 already held by a[\s\S]*without a new epoch/,
    );
    expect(judge(a2, manifest(0, "a", [segment(1, 2), segment(3, 4)])).violations.join("\n")).toMatch(
      /epoch went back from 1/,
    );
    expect(judge(a2, manifest(2, "b", [segment(1, 2)])).violations.join("\n")).toMatch(/txid went back from 4/);
    expect(judge(a1, manifest(2, "b", [segment(1, 2), segment(4, 5)])).violations.join("\n")).toMatch(
      /starts at 4 after 2/,
    );
    expect(judge(a2, manifest(2, "b", [segment(1, 2), segment(2, 5)])).violations.join("\n")).toMatch(
      /starts at 2 after 2[\s\S]*continues at 2 after a's 4/,
    );
  });
});
