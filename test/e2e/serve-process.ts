import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const main = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));

/** A `storeroom serve` child process started from the built CLI. */
export interface ServeProcess {
  readonly url: string;
  readonly listening: Record<string, unknown>;
  readonly child: ChildProcess;
  /** Sends `signal` and resolves with the exit code and the last JSON line ("stopped"). */
  stop(
    signal?: NodeJS.Signals,
  ): Promise<{ code: number | null; stopped: Record<string, unknown> | undefined; stderr: string }>;
}

/** Starts `node dist/cli/main.js serve --json --port 0 ...args` and waits for its "listening" line. */
export async function startServe(args: string[], env: Record<string, string> = {}): Promise<ServeProcess> {
  if (!existsSync(main)) throw new Error("dist/cli/main.js is missing: run `npm run build` (npm test does)");
  const child = spawn(process.execPath, [main, "serve", "--json", "--port", "0", ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: Record<string, unknown>[] = [];
  let stderr = "";
  let buffer = "";
  child.stderr?.on("data", (c: Buffer) => {
    stderr += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const listening = await new Promise<Record<string, unknown>>((resolve, reject) => {
    child.stdout?.on("data", (c: Buffer) => {
      buffer += c.toString();
      let nl = buffer.indexOf("\n");
      while (nl >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        try {
          const parsed = JSON.parse(line) as Record<string, unknown>;
          lines.push(parsed);
          if (parsed.event === "listening") resolve(parsed);
        } catch {
          // Not a JSON line (should not happen with --json); kept out of the protocol.
        }
        nl = buffer.indexOf("\n");
      }
    });
    void exited.then((code) => reject(new Error(`serve exited with ${code} before listening: ${stderr}`)));
  });
  return {
    url: listening.url as string,
    listening,
    child,
    async stop(signal = "SIGTERM") {
      child.kill(signal);
      const code = await exited;
      return { code, stopped: lines.find((l) => l.event === "stopped"), stderr };
    },
  };
}
