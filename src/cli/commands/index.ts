import type { Command } from "commander";
import { registerAudit } from "./audit.js";
import { registerBus } from "./bus.js";
import { registerCompact } from "./compact.js";
import { registerDemo } from "./demo.js";
import { registerJournal } from "./journal.js";
import { registerMigrate } from "./migrate.js";
import { registerServe } from "./serve.js";
import { registerState } from "./state.js";
import { registerTenants } from "./tenants.js";
import { registerTokens } from "./tokens.js";
import { registerUploads } from "./uploads.js";

/** Every top-level command; each module adds its own `register*` function here. */
export const commands: readonly ((program: Command) => void)[] = [
  registerDemo,
  registerServe,
  registerMigrate,
  registerState,
  registerJournal,
  registerCompact,
  registerUploads,
  registerAudit,
  registerBus,
  registerTenants,
  registerTokens,
];
