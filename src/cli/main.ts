#!/usr/bin/env node
import { redactText } from "../internal/redact.js";
import { buildProgram } from "./program.js";

const program = buildProgram();
program.parseAsync(process.argv).catch((err: unknown) => {
  // Startup errors can quote a connection string: never print its credentials.
  process.stderr.write(`storeroom: ${redactText(err instanceof Error ? err.message : String(err))}\n`);
  process.exitCode = 2;
});
