import { spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { StateStore } from "../../src/state/index.js";
import { useTempDir } from "../support/temp-dir.js";

const fixture = fileURLToPath(new URL("./fixtures/crash-writer.ts", import.meta.url));

describe("sqlite: crash safety", () => {
  const dir = useTempDir("storeroom-state-crash-");

  it("a writer killed with SIGKILL mid-stream loses no acknowledged set", async () => {
    const path = join(dir, "crash.db");
    const child = spawn(process.execPath, ["--import", "tsx", fixture, path], { stdio: ["ignore", "pipe", "pipe"] });
    const acknowledged: string[] = [];
    let buffered = "";
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.on("exit", (_code, signal) => resolve(signal)),
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (d: Buffer) => {
        buffered += d.toString();
        const lines = buffered.split("\n");
        buffered = lines.pop() ?? "";
        acknowledged.push(...lines);
        if (acknowledged.length >= 300) {
          child.kill("SIGKILL");
          resolve();
        }
      });
      child.on("exit", () => reject(new Error(`writer exited early: ${stderr}`)));
    });
    expect(await exited).toBe("SIGKILL");
    const state = await StateStore.open({ databasePath: path });
    try {
      const stored = await state.getAll("crash");
      const missing = acknowledged.filter((k) => !stored.has(k));
      expect(missing).toEqual([]);
      expect(stored.size).toBeGreaterThanOrEqual(acknowledged.length);
      for (const k of acknowledged.slice(-5)) expect(stored.get(k)).toBe(`v${k.slice(1)}`);
    } finally {
      await state.close();
    }
  });
});
