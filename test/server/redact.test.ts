import { describe, expect, it } from "vitest";
import { redactText, redactUrl } from "../../src/server/index.js";

describe("redaction of credentials in printed URLs", () => {
  it("hides userinfo passwords and credential query parameters, and nothing else", () => {
    expect(
      redactUrl("s3://b?endpoint=http://127.0.0.1:9000&region=eu&accessKeyId=AK&secretAccessKey=SK&sessionToken=ST"),
    ).toBe("s3://b?endpoint=http://127.0.0.1:9000&region=eu&accessKeyId=***&secretAccessKey=***&sessionToken=***");
    expect(redactUrl("postgres://app:p%40ss@db:5432/x?sslmode=require&password=pw")).toBe(
      "postgres://app:***@db:5432/x?sslmode=require&password=***",
    );
    expect(redactUrl(`s3://b?endpoint=${encodeURIComponent("http://user:pw@minio:9000")}`)).not.toContain("pw");
    expect(redactUrl("/var/lib/storeroom/control.db")).toBe("/var/lib/storeroom/control.db");
    expect(redactUrl("file:///data/objects")).toBe("file:///data/objects");
    expect(redactUrl("memory:")).toBe("memory:");
    expect(redactText("connect postgres://a:secret@h/db failed; retry s3://b?secretAccessKey=x")).toBe(
      "connect postgres://a:***@h/db failed; retry s3://b?secretAccessKey=***",
    );
  });
});
