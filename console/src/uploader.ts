import type { Api } from "./api.js";

interface Created {
  claimId: string;
  key: string;
  partSize: number;
  partCount: number;
}
interface Progress {
  status: string;
  partSize: number;
  partCount: number;
  parts: { partNumber: number; size: number }[];
}
/** What {@link uploadFile} reports while it runs. */
export interface UploadProgress {
  sentBytes: number;
  totalBytes: number;
  /** Parts already on the server when this run started (resumed). */
  resumedParts: number;
}
/** The finished upload as `POST /v1/uploads/:claimId/complete` answers it. */
export interface CompletedUpload {
  key: string;
  size: number;
  url: string;
}

const storagePrefix = "storeroom-upload:";

/** The same file picked again (name, size, modification time) resumes its unfinished upload. */
function fingerprint(file: File, isPublic: boolean): string {
  return `${storagePrefix}${file.name}:${file.size}:${file.lastModified}:${isPublic ? "pub" : "priv"}`;
}

/** True when this browser holds an unfinished upload of `file` to resume. */
export function hasUnfinishedUpload(file: File, isPublic: boolean): boolean {
  return localStorage.getItem(fingerprint(file, isPublic)) !== null;
}

/**
 * Uploads `file` through the upload API, part by part (`POST /v1/uploads`, `PUT
 * /v1/uploads/:claimId/parts/:n`, `POST .../complete`). The claim id is remembered in
 * localStorage, so after a failure or a closed tab the same file picked again continues with
 * the parts the server does not have yet (`GET /v1/uploads/:claimId/parts`).
 */
export async function uploadFile(
  api: Api,
  file: File,
  options: { public: boolean; onProgress: (p: UploadProgress) => void; signal?: AbortSignal },
): Promise<CompletedUpload> {
  const id = fingerprint(file, options.public);
  let upload: { claimId: string; partSize: number; partCount: number } | undefined;
  let done = new Set<number>();
  const saved = localStorage.getItem(id);
  if (saved !== null) {
    try {
      const progress = await api.json<Progress>(`/v1/uploads/${encodeURIComponent(saved)}/parts`);
      if (progress.status === "pending") {
        upload = { claimId: saved, partSize: progress.partSize, partCount: progress.partCount };
        done = new Set(progress.parts.map((p) => p.partNumber));
      }
    } catch {
      // Expired or aborted meanwhile: start over.
    }
  }
  if (upload === undefined) {
    done = new Set();
    const created = await api.json<Created>("/v1/uploads", {
      method: "POST",
      json: { filename: file.name, size: file.size, contentType: file.type || undefined, public: options.public },
    });
    upload = created;
    localStorage.setItem(id, created.claimId);
  }
  const { claimId, partSize, partCount } = upload;
  const sizeOf = (n: number) => Math.min(partSize, file.size - (n - 1) * partSize);
  let sent = [...done].reduce((total, n) => total + sizeOf(n), 0);
  const resumedParts = done.size;
  options.onProgress({ sentBytes: sent, totalBytes: file.size, resumedParts });
  for (let n = 1; n <= partCount; n++) {
    if (done.has(n)) continue;
    const body = file.slice((n - 1) * partSize, (n - 1) * partSize + sizeOf(n));
    await api.request(`/v1/uploads/${encodeURIComponent(claimId)}/parts/${n}`, {
      method: "PUT",
      body,
      headers: { "content-type": "application/octet-stream" },
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    sent += sizeOf(n);
    options.onProgress({ sentBytes: sent, totalBytes: file.size, resumedParts });
  }
  const completed = await api.json<CompletedUpload>(`/v1/uploads/${encodeURIComponent(claimId)}/complete`, {
    method: "POST",
  });
  localStorage.removeItem(id);
  return completed;
}
