import { type ChildProcess, spawn } from "node:child_process";

/** A `storeroom serve` child process of a bench. */
export interface ServeChild {
  readonly url: string;
  readonly child: ChildProcess;
  /** Sends `signal` (default SIGTERM) and waits for the process to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Starts `node <cli> serve --json --port 0 ...args` (with `env` added to this process's) and
 * waits for its "listening" line; rejects with its stderr if it exits first.
 */
export async function startServeChild(
  cli: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<ServeChild> {
  const child = spawn(process.execPath, [cli, "serve", "--json", "--port", "0", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  let stderr = "";
  child.stderr.on("data", (c: Buffer) => {
    stderr += c.toString();
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    let buffer = "";
    child.stdout.on("data", (c: Buffer) => {
      buffer += c.toString();
      for (const line of buffer.split("\n")) {
        if (line.includes('"listening"')) resolve((JSON.parse(line) as { url: string }).url);
      }
    });
    void exited.then(() => reject(new Error(`serve exited before listening: ${stderr}`)));
  });
  return {
    url,
    child,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      child.kill(signal);
      await exited;
    },
  };
}
