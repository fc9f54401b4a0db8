import type { Command } from "commander";
import { registerDemo } from "./demo.js";

/** Every top-level command; each module adds its own `register*` function here. */
export const commands: readonly ((program: Command) => void)[] = [registerDemo];
