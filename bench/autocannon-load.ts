import { spawn } from "node:child_process";

/** What one autocannon run measured. */
export interface LoadRun {
  /** Mean requests per second. */
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly non2xx: number;
  readonly errors: number;
}

// autocannon in a process of its own, so the load generator never shares the measured event loop.
const loadScript = `
const autocannon = require("autocannon");
const spec = JSON.parse(process.argv[1]);
autocannon({ url: spec.url, connections: spec.connections, duration: spec.seconds, requests: spec.requests }, (err, r) => {
  if (err) { console.error(err); process.exit(2); }
  process.stdout.write(JSON.stringify({ rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, non2xx: r.non2xx, errors: r.errors }));
});
`;

/** Runs autocannon against `url` for `seconds` with `connections`, cycling through `requests` on every connection. */
export async function runLoad(spec: {
  url: string;
  connections: number;
  seconds: number;
  requests: readonly object[];
}): Promise<LoadRun> {
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, ["-e", loadScript, JSON.stringify(spec)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let text = "";
    child.stdout.on("data", (c: Buffer) => {
      text += c.toString();
    });
    child.once("exit", (code) => (code === 0 ? resolve(text) : reject(new Error(`autocannon exited ${code}`))));
  });
  return JSON.parse(out) as LoadRun;
}
