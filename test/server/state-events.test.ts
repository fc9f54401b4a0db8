import { describe, expect, it } from "vitest";
import { useTempDir } from "../support/temp-dir.js";
import { auth, startServer, tokens } from "./server-fixture.js";

/** Reads SSE frames from a fetch body until `count` events (not comments) arrived. */
async function readEvents(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  count: number,
): Promise<{ event: string; data: unknown }[]> {
  const decoder = new TextDecoder();
  const events: { event: string; data: unknown }[] = [];
  let buffer = "";
  while (events.length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut = buffer.indexOf("\n\n");
    while (cut >= 0) {
      const frame = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const lines = frame.split("\n");
      const event = lines.find((l) => l.startsWith("event: "))?.slice(7);
      const data = lines.find((l) => l.startsWith("data: "))?.slice(6);
      if (event !== undefined && data !== undefined) events.push({ event, data: JSON.parse(data) });
      cut = buffer.indexOf("\n\n");
    }
  }
  return events;
}

describe("state events over SSE", async () => {
  const dir = useTempDir();
  const server = await startServer(dir);
  const base = await server.listen();

  it("streams set and delete events of the caller's tenant only", async () => {
    const res = await fetch(`${base}/v1/state/config/events`, { headers: auth(tokens.acme) });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toContain(": watching");
    // Another tenant's write to the same group name must not show up.
    await fetch(`${base}/v1/state/config/colour`, { method: "PUT", headers: auth(tokens.globex), body: "red" });
    await fetch(`${base}/v1/state/other/colour`, { method: "PUT", headers: auth(tokens.acme), body: "green" });
    await fetch(`${base}/v1/state/config/colour`, { method: "PUT", headers: auth(tokens.acme), body: "blue" });
    await fetch(`${base}/v1/state/config/colour`, { method: "DELETE", headers: auth(tokens.acme) });
    const events = await readEvents(reader, 2);
    expect(events[0]).toEqual({
      event: "set",
      data: expect.objectContaining({ type: "set", group: "config", key: "colour", value: "blue" }),
    });
    expect(events[1]).toEqual({
      event: "delete",
      data: expect.objectContaining({ type: "delete", group: "config", key: "colour" }),
    });
    await reader.cancel();
  });

  it("requires identity for the stream", async () => {
    const res = await fetch(`${base}/v1/state/config/events`);
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("UNAUTHENTICATED");
  });

  it("ends open streams when the server closes", async () => {
    const res = await fetch(`${base}/v1/state/config/events`, { headers: auth(tokens.ada) });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    const report = await server.close();
    expect(report).toEqual({ flushed: true, errors: [] });
    let done = false;
    while (!done) done = (await reader.read()).done;
    expect(done).toBe(true);
  });
});
