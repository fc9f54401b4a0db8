import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { BackgroundJob, checkIntervalMs, MAX_INTERVAL_MS } from "../../src/background-job.js";
import { ManualClock, ManualScheduler } from "../../src/clock.js";
import { isStoreError } from "../../src/errors.js";

/** Resolves after the microtasks and promise callbacks queued so far have run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not reached before the deadline");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("BackgroundJob", () => {
  it("tells a timer-driven run from a runOnce call", async () => {
    const clock = new ManualScheduler(1_000);
    const triggers: string[] = [];
    const job = new BackgroundJob({
      name: "t",
      intervalMs: 100,
      clock,
      run: async (trigger) => {
        triggers.push(trigger);
      },
    });
    job.start();
    clock.advance(100);
    await settle();
    await job.runOnce();
    clock.advance(100);
    await settle();
    expect(triggers).toEqual(["timer", "call", "timer"]);
    await job.stop();
  });

  it("runs once per interval on a scheduling clock, each interval counted from the end of the previous run", async () => {
    const clock = new ManualScheduler(1_000);
    let runs = 0;
    const job = new BackgroundJob({ name: "t", intervalMs: 100, clock, run: async () => ++runs });
    job.start();
    expect(job.started).toBe(true);
    for (let i = 1; i <= 3; i++) {
      clock.advance(99);
      await settle();
      expect(runs).toBe(i - 1);
      clock.advance(1);
      await settle();
      expect(runs).toBe(i);
    }
    // A long jump runs the job once: the next run is scheduled only after this one ended.
    clock.advance(10_000);
    await settle();
    expect(runs).toBe(4);
    await job.stop();
    expect(job.started).toBe(false);
    expect(clock.pending).toBe(0);
  });

  it("intervalMs: 0 disables the timer but runOnce still runs the work", async () => {
    const clock = new ManualScheduler();
    let runs = 0;
    const job = new BackgroundJob({ name: "t", intervalMs: 0, clock, run: async () => ++runs });
    job.start();
    expect(job.started).toBe(false);
    expect(clock.pending).toBe(0);
    clock.advance(10_000_000);
    await settle();
    expect(runs).toBe(0);
    expect(await job.runOnce()).toBe(1);
  });

  it("sends errors of timer runs to onError and keeps the timer going", async () => {
    const clock = new ManualScheduler();
    const errors: unknown[] = [];
    let runs = 0;
    const job = new BackgroundJob({
      name: "t",
      intervalMs: 10,
      clock,
      onError: (err) => errors.push(err),
      run: async () => {
        runs++;
        throw new Error(`run ${runs} failed`);
      },
    });
    job.start();
    for (let i = 0; i < 3; i++) {
      clock.advance(10);
      await settle();
    }
    expect(runs).toBe(3);
    expect(errors.map((e) => (e as Error).message)).toEqual(["run 1 failed", "run 2 failed", "run 3 failed"]);
    await job.stop();
  });

  it("runOnce rejects with the run's error and does not report it to onError", async () => {
    const errors: unknown[] = [];
    const job = new BackgroundJob({
      name: "t",
      intervalMs: 0,
      onError: (err) => errors.push(err),
      run: () => {
        throw new Error("sync failure");
      },
    });
    await expect(job.runOnce()).rejects.toThrow("sync failure");
    expect(errors).toEqual([]);
    expect(job.running).toBe(false);
  });

  it("never runs twice at once: runOnce waits for the run in progress", async () => {
    let active = 0;
    let maxActive = 0;
    const gates: Array<() => void> = [];
    const job = new BackgroundJob({
      name: "t",
      intervalMs: 0,
      run: async () => {
        active++;
        maxActive = Math.max(maxActive, active);
        await new Promise<void>((resolve) => gates.push(resolve));
        active--;
      },
    });
    const runs = [job.runOnce(), job.runOnce(), job.runOnce()];
    for (let i = 0; i < 3; i++) {
      await until(() => gates.length === i + 1);
      expect(job.running).toBe(true);
      gates[i]?.();
    }
    await Promise.all(runs);
    expect(maxActive).toBe(1);
    expect(job.running).toBe(false);
  });

  it("stop cancels the timer and waits for the run in progress", async () => {
    const clock = new ManualScheduler();
    let release: () => void = () => {};
    let finished = 0;
    const job = new BackgroundJob({
      name: "t",
      intervalMs: 5,
      clock,
      run: async () => {
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        finished++;
      },
    });
    job.start();
    clock.advance(5);
    await until(() => job.running);
    let stopped = false;
    const stopping = job.stop().then(() => {
      stopped = true;
    });
    await settle();
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(finished).toBe(1);
    clock.advance(1_000);
    await settle();
    expect(finished).toBe(1);
    expect(clock.pending).toBe(0);
  });

  it("falls back to real timers when the clock cannot schedule (a plain ManualClock)", async () => {
    let runs = 0;
    const job = new BackgroundJob({ name: "t", intervalMs: 2, clock: new ManualClock(), run: async () => ++runs });
    job.start();
    await until(() => runs >= 2);
    await job.stop();
  });

  it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, MAX_INTERVAL_MS + 1, "10"])(
    "rejects intervalMs %s with an InvalidArgumentError naming the option",
    (intervalMs) => {
      expect(() => new BackgroundJob({ name: "t", intervalMs: intervalMs as number, run: async () => {} })).toThrow(
        /intervalMs must be an integer/,
      );
      try {
        checkIntervalMs(intervalMs, "purgeIntervalMs", "state.open");
      } catch (err) {
        expect(isStoreError(err, "INVALID_ARGUMENT")).toBe(true);
        expect((err as Error).message).toMatch(/^purgeIntervalMs must be/);
        return;
      }
      throw new Error("checkIntervalMs accepted an invalid value");
    },
  );

  it("its real timers do not keep the process alive", async () => {
    const dist = fileURLToPath(new URL("../../dist/index.js", import.meta.url));
    if (!existsSync(dist)) throw new Error("dist/index.js is missing: run `npm run build` (npm test does)");
    const script = `import { BackgroundJob } from ${JSON.stringify(dist)};
      const job = new BackgroundJob({ name: "idle", intervalMs: 600000, run: async () => {} });
      job.start();
      console.log(job.started);`;
    const started = Date.now();
    const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script], {
      timeout: 20_000,
    });
    expect(stdout.trim()).toBe("true");
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});

describe("ManualScheduler", () => {
  it("runs callbacks in due order with the clock set to each due time, and cancels", () => {
    const clock = new ManualScheduler(0);
    const seen: string[] = [];
    clock.schedule(30, () => seen.push(`b@${clock.now()}`));
    clock.schedule(10, () => seen.push(`a@${clock.now()}`));
    const cancel = clock.schedule(20, () => seen.push("cancelled"));
    cancel();
    clock.schedule(30, () => seen.push(`c@${clock.now()}`));
    expect(clock.advance(50)).toBe(50);
    expect(seen).toEqual(["a@10", "b@30", "c@30"]);
    expect(clock.pending).toBe(0);
  });
});
