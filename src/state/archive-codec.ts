import { gzipSync } from "node:zlib";
import { UnsupportedError } from "../errors.js";

/** Archive compression formats of {@link StateStore.compact}. */
export type ArchiveFormat = "gzip" | "zstd";

interface ZstdWasm {
  init(): Promise<void>;
  compress(data: Uint8Array, level?: number): Uint8Array;
}

let zstd: Promise<ZstdWasm> | undefined;

// zstd comes from @bokuweb/zstd-wasm: WebAssembly, so it loads the same on every platform,
// whereas zstd-napi is a native addon compiled at install time and missing wherever no
// toolchain (or prebuilt binary) was available. Loaded lazily: gzip users never pay for it.
async function loadZstd(): Promise<ZstdWasm> {
  zstd ??= (async () => {
    try {
      const mod = (await import("@bokuweb/zstd-wasm")) as unknown as ZstdWasm;
      await mod.init();
      return mod;
    } catch (err) {
      zstd = undefined;
      throw new UnsupportedError("zstd is not available: the @bokuweb/zstd-wasm package could not be loaded", {
        op: "state.compact",
        cause: err,
      });
    }
  })();
  return zstd;
}

/** Compresses `data`; zstd frames carry their content size, so any zstd decoder reads them. */
export async function compressArchive(data: Uint8Array, format: ArchiveFormat): Promise<Uint8Array> {
  if (format === "gzip") return gzipSync(data);
  return (await loadZstd()).compress(data, 3);
}

/** The file extension of a format. */
export function archiveExtension(format: ArchiveFormat): string {
  return format === "gzip" ? ".jsonl.gz" : ".jsonl.zst";
}
