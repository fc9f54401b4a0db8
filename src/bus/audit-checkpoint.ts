import { createPrivateKey, createPublicKey, KeyObject, sign, verify } from "node:crypto";
import { InvalidArgumentError } from "../errors.js";

/**
 * A signed statement "the audit log had `seq` as its last row, with this `hash`". Keep it
 * outside the database: a later {@link AuditLog.verify} with it detects truncation below `seq`
 * and rewrites of the chain, which a bare hash chain cannot.
 */
export interface AuditCheckpoint {
  /** Seq of the last row covered. */
  readonly seq: number;
  /** That row's hash (lowercase hex). */
  readonly hash: string;
  /** Ed25519 signature over {@link checkpointMessage}, base64. */
  readonly signature: string;
}

/** A key as a `KeyObject`, a PEM string or PEM bytes. */
export type KeyInput = KeyObject | string | Uint8Array;

/** The exact bytes a checkpoint signs. */
export function checkpointMessage(seq: number, hash: string): Buffer {
  return Buffer.from(`storeroom-audit-checkpoint/v1\n${seq}\n${hash}`, "utf8");
}

/** Signs `(seq, hash)` with an Ed25519 private key. */
export function signCheckpoint(seq: number, hash: string, privateKey: KeyInput): AuditCheckpoint {
  const key = privateKey instanceof KeyObject ? privateKey : readKey(privateKey, createPrivateKey, "private");
  if (key.asymmetricKeyType !== "ed25519") throw new InvalidArgumentError("checkpoints are signed with an Ed25519 key");
  return { seq, hash, signature: sign(null, checkpointMessage(seq, hash), key).toString("base64") };
}

/** True when the checkpoint's signature verifies with the Ed25519 public key. */
export function checkpointSignatureValid(checkpoint: AuditCheckpoint, publicKey: KeyInput): boolean {
  const key = publicKey instanceof KeyObject ? publicKey : readKey(publicKey, createPublicKey, "public");
  if (key.asymmetricKeyType !== "ed25519")
    throw new InvalidArgumentError("checkpoints are verified with an Ed25519 key");
  return verify(
    null,
    checkpointMessage(checkpoint.seq, checkpoint.hash),
    key,
    Buffer.from(checkpoint.signature, "base64"),
  );
}

/** Reads a checkpoint from its JSON form, throwing {@link InvalidArgumentError} when a field is missing or mistyped. */
export function parseCheckpoint(json: string): AuditCheckpoint {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (cause) {
    throw new InvalidArgumentError("checkpoint is not JSON", { cause });
  }
  const c = value as Partial<AuditCheckpoint> | null;
  if (
    c === null ||
    typeof c !== "object" ||
    !Number.isSafeInteger(c.seq) ||
    (c.seq as number) < 0 ||
    typeof c.hash !== "string" ||
    typeof c.signature !== "string"
  ) {
    throw new InvalidArgumentError("checkpoint needs { seq: integer >= 0, hash: string, signature: string }");
  }
  return { seq: c.seq as number, hash: c.hash, signature: c.signature };
}

/** Parses a PEM key; what OpenSSL cannot read is the caller's input, so it is an {@link InvalidArgumentError}. */
function readKey(
  key: string | Uint8Array,
  create: (pem: string | Buffer) => KeyObject,
  kind: "private" | "public",
): KeyObject {
  if (typeof key !== "string" && !(key instanceof Uint8Array)) {
    throw new InvalidArgumentError(`the ${kind} key must be a KeyObject, a PEM string or PEM bytes`);
  }
  try {
    return create(typeof key === "string" ? key : Buffer.from(key));
  } catch (cause) {
    throw new InvalidArgumentError(`the ${kind} key is not a PEM-encoded Ed25519 ${kind} key`, { cause });
  }
}
