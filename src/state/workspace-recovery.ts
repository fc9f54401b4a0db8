import { existsSync, mkdirSync, readdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import { WORKSPACE_EXTENSION, Workspace, type WorkspaceHost } from "./workspace.js";

/** A scratch file that could not be opened and was moved aside. */
export interface QuarantinedWorkspace {
  /** The workspace name the file had. */
  readonly name: string;
  /** Where the file is now (`<state dir>/quarantine/...`). */
  readonly path: string;
  /** Why it could not be opened. */
  readonly reason: string;
}

/** What {@link StateStore.recoverOrphans} found. */
export interface RecoveredWorkspaces {
  /** Open workspaces left behind (e.g. by a crash); commit or discard each. */
  readonly workspaces: Workspace[];
  /** Corrupt files, moved to `quarantine/` (never skipped silently, never deleted). */
  readonly quarantined: QuarantinedWorkspace[];
}

/**
 * Opens every workspace file in `directory` (sorted by name) that is not open in this store
 * already. A file that is not a usable SQLite database is moved, with its `-wal`/`-shm`
 * companions, to `directory/quarantine/` and reported.
 */
export async function recoverWorkspaces(
  directory: string,
  openNames: ReadonlySet<string>,
  host: WorkspaceHost,
): Promise<RecoveredWorkspaces> {
  if (!existsSync(directory)) return { workspaces: [], quarantined: [] };
  const files = readdirSync(directory, { withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(WORKSPACE_EXTENSION))
    .map((e) => e.name)
    .sort();
  const workspaces: Workspace[] = [];
  const quarantined: QuarantinedWorkspace[] = [];
  for (const file of files) {
    const name = file.slice(0, -WORKSPACE_EXTENSION.length);
    if (name === "" || openNames.has(name)) continue;
    try {
      workspaces.push(await Workspace.openFile(name, join(directory, file), host));
    } catch (err) {
      const dir = join(directory, "quarantine");
      mkdirSync(dir, { recursive: true });
      const target = uniqueTarget(dir, file);
      for (const suffix of ["-wal", "-shm", ""]) {
        if (existsSync(join(directory, file + suffix))) renameSync(join(directory, file + suffix), target + suffix);
      }
      quarantined.push({ name, path: target, reason: err instanceof Error ? err.message : String(err) });
    }
  }
  return { workspaces, quarantined };
}

function uniqueTarget(dir: string, file: string): string {
  let target = join(dir, file);
  for (let i = 1; existsSync(target); i++) target = join(dir, `${file}.${i}`);
  return target;
}
