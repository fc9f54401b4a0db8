import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { afterAll, describe, expect, it, vi } from "vitest";
import { hasPostgres, useFreshPostgresDatabase } from "../support/postgres.js";
import { useTempDir } from "../support/temp-dir.js";
import { type ServeProcess, startServe } from "./serve-process.js";

const cli = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

function run(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const running = new Set<ServeProcess>();
afterAll(async () => {
  for (const p of running) await p.stop("SIGKILL");
});
async function serve(args: string[]): Promise<ServeProcess> {
  const p = await startServe(args);
  running.add(p);
  return p;
}
async function stop(p: ServeProcess) {
  running.delete(p);
  return p.stop("SIGTERM");
}

/** A login role with a recognisable password that owns the test database, and its connection URL. */
async function passwordRole(url: string): Promise<{ url: string; password: string; drop: () => Promise<void> }> {
  const name = `sr_secret_${process.pid}`;
  const password = `pg-password-do-not-print-${process.pid}`;
  const database = new URL(url).pathname.slice(1);
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`DROP ROLE IF EXISTS ${name}`);
  await admin.query(`CREATE ROLE ${name} LOGIN PASSWORD '${password}'`);
  await admin.query(`ALTER DATABASE ${database} OWNER TO ${name}`);
  await admin.end();
  const own = new URL(url);
  own.username = name;
  own.password = password;
  return {
    url: own.toString(),
    password,
    async drop() {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`REASSIGN OWNED BY ${name} TO CURRENT_USER`);
      await c.query(`DROP OWNED BY ${name}`);
      await c.query(`DROP ROLE ${name}`);
      await c.end();
    },
  };
}

/** Runs `serve` in text mode until its banner is complete, then SIGTERM; everything it printed. */
function textStart(args: string[]): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [cli, "serve", "--port", "0", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  let stopping = false;
  return new Promise((resolve) => {
    const onData = (c: Buffer) => {
      output += c.toString();
      if (output.includes("  console ") && child.signalCode === null && !stopping) {
        stopping = true;
        child.kill("SIGTERM");
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("exit", (code) => resolve({ code, output }));
  });
}

describe("storeroom serve: secrets, tokens and failed starts (built CLI)", () => {
  const root = useTempDir("storeroom-e2e-sec-");
  const pg = hasPostgres ? useFreshPostgresDatabase() : undefined;

  it("never prints the S3 secret key or the PostgreSQL password (banner, --json, shutdown)", async () => {
    const s3Secret = "S3-SECRET-do-not-print-9f8e7d";
    const s3Key = "AKID-do-not-print-1a2b3c";
    const objects = `s3://bucket?endpoint=${encodeURIComponent("http://127.0.0.1:9")}&region=us-east-1&accessKeyId=${s3Key}&secretAccessKey=${s3Secret}`;
    const role = pg === undefined ? undefined : await passwordRole(pg.url);
    const database = role?.url ?? join(root, "secrets-control.db");
    const password = role?.password;
    const text = await textStart(["--data", join(root, "secrets-text"), "--objects", objects, "--database", database]);
    const json = await serve(["--data", join(root, "secrets-json"), "--objects", objects, "--database", database]);
    const stopped = await stop(json);
    const printed = [text.output, JSON.stringify(json.listening), JSON.stringify(stopped.stopped), stopped.stderr];
    expect(text.code).toBe(0);
    expect(text.output).toContain("accessKeyId=***&secretAccessKey=***");
    for (const out of printed) {
      expect(out).not.toContain(s3Secret);
      expect(out).not.toContain(s3Key);
      if (password !== undefined) expect(out).not.toContain(password);
    }
    await role?.drop();
  });

  it("refuses to start on a tokens file with the same token twice, naming the lines", () => {
    const data = join(root, "dup");
    mkdirSync(data, { recursive: true });
    const file = [
      '{ "tokens": [',
      '  { "token": "same-token-0123456789", "orgId": "acme", "roles": ["admin"] },',
      '  { "token": "same-token-0123456789", "orgId": "beta", "roles": ["admin"] }',
      "] }",
    ].join("\n");
    writeFileSync(join(data, "tokens.json"), file);
    const r = run(["serve", "--data", data, "--port", "0", "--json"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/tokens\.json line 3: the same token as line 2/);
    expect(readFileSync(join(data, "tokens.json"), "utf8")).toBe(file);
  });

  it("prints the token a failed first start generated, on the next start, and only until shown", async () => {
    const data = join(root, "failed-first");
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, "127.0.0.1", () => r()));
    const port = (busy.address() as { port: number }).port;
    const failed = spawnSync(process.execPath, [cli, "serve", "--data", data, "--port", String(port), "--json"], {
      encoding: "utf8",
    });
    busy.close();
    expect(failed.status).toBe(2);
    expect(failed.stdout).not.toContain("generatedToken");
    const second = await serve(["--data", data]);
    expect(second.listening.generatedTokenFromEarlierStart).toBe(true);
    const token = second.listening.generatedToken as string;
    expect(await (await fetch(`${second.url}/v1/whoami`, { headers: bearer(token) })).json()).toEqual({
      identity: { orgId: "default", roles: ["operator"] },
    });
    expect(readFileSync(join(data, "tokens.json"), "utf8")).not.toContain(token);
    // Printed now: its clear text is gone, so later starts do not repeat it (TokenStore tests cover the reopen).
    expect(existsSync(join(data, "tokens.json.first-token"))).toBe(false);
    await stop(second);
  });

  it("tokens add | ls | revoke change what a running server accepts, without a restart", async () => {
    const data = join(root, "hot");
    const p = await serve(["--data", data]);
    const added = run(["tokens", "add", "--data", data, "--org", "acme", "--user", "ada", "--role", "admin", "--json"]);
    expect(added.code).toBe(0);
    const made = JSON.parse(added.stdout) as { token: string; id: string };
    await vi.waitFor(
      async () => expect((await fetch(`${p.url}/v1/whoami`, { headers: bearer(made.token) })).status).toBe(200),
      { timeout: 5000 },
    );
    const listed = run(["tokens", "ls", "--data", data, "--json"]);
    expect(JSON.parse(listed.stdout).tokens.map((t: { id: string }) => t.id)).toContain(made.id);
    expect(listed.stdout).not.toContain(made.token);
    expect(run(["tokens", "revoke", made.id, "--data", data]).code).toBe(0);
    await vi.waitFor(
      async () => expect((await fetch(`${p.url}/v1/whoami`, { headers: bearer(made.token) })).status).toBe(401),
      { timeout: 5000 },
    );
    expect((await stop(p)).code).toBe(0);
  });
});
