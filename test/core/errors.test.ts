import { describe, expect, it } from "vitest";
import { ClaimNotFoundError, isStoreError, NotFoundError, StoreError, type StoreErrorCode } from "../../src/errors.js";

describe("StoreError codes", () => {
  it("isStoreError only accepts known codes", () => {
    const err = new NotFoundError("gone");
    // @ts-expect-error a misspelt code is a compile error
    expect(isStoreError(err, "NOT_FOND")).toBe(false);
    expect(isStoreError(err, "NOT_FOUND")).toBe(true);
    expect(isStoreError(new Error("plain"))).toBe(false);
  });

  it("a claim that is not found is a NotFoundError with its own code", () => {
    const err = new ClaimNotFoundError("no claim c1");
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err).toBeInstanceOf(StoreError);
    expect(err.code).toBe<StoreErrorCode>("CLAIM_NOT_FOUND");
    expect(err.name).toBe("ClaimNotFoundError");
    expect(isStoreError(err, "CLAIM_NOT_FOUND")).toBe(true);
    expect(isStoreError(err, "NOT_FOUND")).toBe(false);
  });
});
