// Runs inside a folder where the packed storeroom tarball was installed (copied there by
// scripts/check-package.sh). `node package-smoke.mjs light`: the package alone, no optional
// peers; `node package-smoke.mjs server`: with the server's peers installed.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

const mode = process.argv[2];
const manifest = JSON.parse(readFileSync("node_modules/storeroom/package.json", "utf8"));
const checks = [];
const check = async (name, fn) => {
  await fn();
  checks.push(name);
};
const expectMissing = async (name, packages, fn) =>
  check(`${name}: MissingDependencyError naming ${packages.join(", ")}`, async () => {
    let err;
    try {
      await fn();
    } catch (e) {
      err = e;
    }
    if (err?.code !== "MISSING_DEPENDENCY" || err.packageName !== packages[0]) {
      throw new Error(`${name}: expected MISSING_DEPENDENCY for ${packages[0]}, got ${err?.stack ?? err}`);
    }
    for (const p of packages)
      if (!err.message.includes(p)) throw new Error(`${name}: message lacks ${p}: ${err.message}`);
  });

const subpaths = Object.keys(manifest.exports).filter((k) => k.endsWith("package.json") === false);
for (const k of subpaths) {
  const specifier = k === "." ? "storeroom" : `storeroom/${k.slice(2)}`;
  await check(`import ${specifier}`, () => import(specifier));
}
const { openStore } = await import("storeroom/kv");
const { openSqlite } = await import("storeroom/sql");
const { openObjectStore } = await import("storeroom/objects");
const { BusClient } = await import("storeroom/bus");
const { StateStore } = await import("storeroom/state");
const { createServer } = await import("storeroom/server");

await check("memory kv store", async () => {
  const kv = await openStore("memory", "");
  await kv.update(async (tx) => tx.put("smoke", "k", new TextEncoder().encode("v")));
  const got = await kv.view(async (tx) => tx.get("smoke", "k"));
  if (new TextDecoder().decode(got) !== "v") throw new Error("memory kv lost a value");
  await kv.close();
});
const nodeSqlite = (() => {
  const [major, minor] = process.versions.node.split(".").map(Number);
  return major > 22 || (major === 22 && minor >= 16);
})();
if (nodeSqlite) {
  await check("state store on the default SQLite engine (node:sqlite, nothing compiled)", async () => {
    const database = await openSqlite(":memory:", { engine: "node:sqlite" });
    const state = await StateStore.open({ database });
    await state.set("g", "k", "v");
    if ((await state.get("g", "k")) !== "v") throw new Error("state lost a value");
    await state.close();
    await database.close();
  });
}
if (mode === "light") {
  await expectMissing("openSqlite better-sqlite3", ["better-sqlite3"], () =>
    openSqlite(":memory:", { engine: "better-sqlite3" }),
  );
  await expectMissing("kv postgres driver", ["pg"], () => openStore("postgres", "postgres://127.0.0.1:1/none"));
  await expectMissing("s3 object store", ["@aws-sdk/client-s3"], () =>
    openObjectStore("s3://bucket?endpoint=http://127.0.0.1:1"),
  );
  await expectMissing("bus client", ["ws"], () =>
    new BusClient({
      url: "ws://127.0.0.1:1",
      name: "smoke",
      token: "t",
      hmacSecret: "s".repeat(32),
      onMessage: () => {},
    }).connect(),
  );
  await expectMissing("createServer", ["fastify", "ws", "prom-client"], () =>
    createServer({ dataDir: join(tmpdir(), "storeroom-smoke-never") }),
  );
}
if (mode === "server") {
  await check("storeroom serve --port 0 answers /healthz and stops cleanly on SIGTERM", async () => {
    const data = await mkdtemp(join(tmpdir(), "storeroom-smoke-"));
    const child = spawn(
      process.execPath,
      ["node_modules/.bin/storeroom", "serve", "--port", "0", "--json", "--data", data],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    const exited = new Promise((resolve) => child.once("exit", resolve));
    const listening = await new Promise((resolve, reject) => {
      let buffer = "";
      child.stdout.on("data", (chunk) => {
        buffer += chunk;
        for (const line of buffer.split("\n").slice(0, -1)) {
          const parsed = JSON.parse(line);
          if (parsed.event === "listening") resolve(parsed);
        }
        buffer = buffer.slice(buffer.lastIndexOf("\n") + 1);
      });
      exited.then((code) => reject(new Error(`serve exited with ${code} before listening`)));
    });
    const health = await fetch(`${listening.url}/healthz`);
    if (health.status !== 200) throw new Error(`/healthz answered ${health.status}`);
    child.kill("SIGTERM");
    const code = await exited;
    if (code !== 0) throw new Error(`serve exited with ${code} after SIGTERM`);
    checks.push(`serve ran on SQLite engine ${listening.sqliteEngine}`);
  });
}
console.log(`package smoke (${mode}, Node ${process.version}): ${checks.length} checks passed`);
for (const name of checks) console.log(`  ok  ${name}`);
