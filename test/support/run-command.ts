import { Command } from "commander";
import { vi } from "vitest";

/** What an in-process command run printed and the exit code it set. */
export interface CommandRun {
  code: number;
  stdout: string;
  /** What the command wrote to stderr, then the message of an error thrown out of it (main.ts turns that into exit code 2). */
  stderr: string;
}

/**
 * Runs one command group in this process, as `storeroom <args>` would, capturing stdout, stderr
 * and the exit code; a thrown error becomes code 2 like in main.ts.
 */
export async function runCommand(register: (program: Command) => void, args: string[]): Promise<CommandRun> {
  const program = new Command("storeroom").exitOverride();
  register(program);
  let stdout = "";
  let stderr = "";
  const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
    stdout += String(chunk);
    return true;
  });
  const errSpy = vi.spyOn(process.stderr, "write").mockImplementation((chunk) => {
    stderr += String(chunk);
    return true;
  });
  const saved = process.exitCode;
  process.exitCode = undefined;
  try {
    await program.parseAsync(["node", "storeroom", ...args]);
    return { code: Number(process.exitCode ?? 0), stdout, stderr };
  } catch (err) {
    return { code: 2, stdout, stderr: stderr + (err as Error).message };
  } finally {
    spy.mockRestore();
    errSpy.mockRestore();
    process.exitCode = saved;
  }
}
