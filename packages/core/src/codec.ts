/**
 * The codec stage: between the envelope and the broker, for every broker (docs/security.md,
 * docs/protocol.md "Signed and encrypted jobs").
 *
 * - **Encryption** (AES-256-GCM) replaces the payload's JSON by `{"$enc":"v1.<key id>.<data>"}`,
 *   `<data>` being base64url of IV (12 bytes) ‖ ciphertext ‖ tag (16 bytes), authenticated with
 *   the job's id and name. Only the payload: every other field is what core and the brokers route,
 *   order, count and fuse on (the Redis fetch reads `{"v":1,"id":…,"gen":N,` at the head of the
 *   text), so it stays readable. The job store keeps the same sealed payload.
 * - **Signing** (HMAC-SHA-256) appends `,"sig":"<key id>.<mac>"` as the envelope's last field; the
 *   MAC covers every byte before it, so no field, clear or sealed, can be changed or added
 *   without the key. Workers sign what they publish (retries, hand-backs, dead letters).
 *
 * Several keys verify or decrypt; the `current` one signs or encrypts: rotation is adding the new
 * key, making it current everywhere, then removing the old one once no message carries it.
 * Only `node:crypto` primitives; nothing here is hand-rolled but the framing.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createSecretKey,
  type KeyObject,
  randomFillSync,
  timingSafeEqual,
} from "node:crypto";
import { CodecKeyError, DecryptError, SignatureError } from "./errors.js";
import { MAX_DEPTH, parseUntrustedJson } from "./internal/json.js";

/** A key: raw bytes, or a base64 (or base64url) string of them. */
export type CodecKey = Uint8Array | string;

/** A key ring: keys by id, and the id of the one that signs or encrypts. */
export interface KeyRing {
  /** Keys by id (1 to 32 of `A-Z a-z 0-9 _ -`). Every one of them verifies (or decrypts). */
  readonly keys: Readonly<Record<string, CodecKey>>;
  /** The id of the key that signs (or encrypts) what this process publishes. */
  readonly current: string;
  /**
   * Refuse what is not signed (or not encrypted). A worker dead-letters such a message unrun, with
   * reason `signature` (or `undecodable` for a clear payload). `false` only while rolling the
   * option out over queues that still hold older messages.
   * @default true
   */
  readonly required?: boolean;
}

/** `codec` option of `createClient`, `createWorker` and `createAdmin`: give every process the same. */
export interface CodecOptions {
  /** HMAC-SHA-256 signatures over the whole envelope; keys of at least 32 bytes. */
  readonly signing?: KeyRing;
  /** AES-256-GCM encryption of the payload; keys of exactly 32 bytes. */
  readonly encryption?: KeyRing;
}

/** The codec as core uses it. */
export interface Codec {
  /** Whether anything is configured; false for the identity codec. */
  readonly active: boolean;
  /** Whether payloads are encrypted (and decrypted). */
  readonly encrypts: boolean;
  /** The payload's JSON text as it goes into the envelope and the record (sealed when encrypting). */
  sealPayload(payloadJson: string, id: string, name: string): string;
  /** The payload from its envelope value: decrypted when sealed. Throws `DecryptError`. */
  openPayload(payload: unknown, id: string, name: string): unknown;
  /** The wire text of an encoded envelope: signed when signing. */
  sign(envelopeText: string): string;
  /** The envelope text of a wire text, its signature checked and removed. Throws `SignatureError`. */
  verify(body: string): string;
}

const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]+={0,2}|[A-Za-z0-9_-]+)$/;
const SIG_FIELD = ',"sig":"';
/** The signature field at the end of a body: key id, then 43 characters of base64url (32 bytes). */
const SIG_TAIL = /^,"sig":"([A-Za-z0-9_-]{1,32})\.([A-Za-z0-9_-]{43})"\}$/;
const ENC_PREFIX = '{"$enc":"v1.';
const SEALED = /^v1\.([A-Za-z0-9_-]{1,32})\.([A-Za-z0-9_-]+)$/;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** The codec that changes nothing (no option given). */
export const IDENTITY_CODEC: Codec = Object.freeze({
  active: false,
  encrypts: false,
  sealPayload: (payloadJson: string) => payloadJson,
  openPayload: (payload: unknown) => payload,
  sign: (text: string) => text,
  verify: (body: string) => body,
});

/** Checks the `codec` option and builds the codec; throws `CodecKeyError` for an unusable key. */
export function createCodec(options: CodecOptions | undefined, field = "codec"): Codec {
  if (options === undefined) return IDENTITY_CODEC;
  if (typeof options !== "object" || options === null) throw new CodecKeyError(field, "expected { signing?, encryption? }");
  const signing =
    options.signing === undefined ? undefined : ring(options.signing, `${field}.signing`, (n) => n >= 32, "at least 32 bytes");
  const encryption =
    options.encryption === undefined ? undefined : ring(options.encryption, `${field}.encryption`, (n) => n === 32, "exactly 32 bytes");
  if (signing === undefined && encryption === undefined) return IDENTITY_CODEC;
  return new KeyedCodec(signing, encryption);
}

interface Ring {
  readonly keys: ReadonlyMap<string, Buffer>;
  /** The same keys as KeyObjects: HMAC with a KeyObject skips importing the key on every call. */
  readonly keyObjects: ReadonlyMap<string, KeyObject>;
  readonly currentId: string;
  readonly current: Buffer;
  readonly currentObject: KeyObject;
  readonly required: boolean;
}

function ring(options: KeyRing, field: string, lengthOk: (n: number) => boolean, wanted: string): Ring {
  if (typeof options !== "object" || options === null || typeof options.keys !== "object" || options.keys === null) {
    throw new CodecKeyError(field, "expected { keys: { <id>: key }, current: <id> }");
  }
  const keys = new Map<string, Buffer>();
  for (const [id, key] of Object.entries(options.keys)) {
    if (!KEY_ID.test(id))
      throw new CodecKeyError(`${field}.keys`, `key id ${JSON.stringify(id.slice(0, 40))} is not 1 to 32 of A-Z a-z 0-9 _ -`);
    const bytes = keyBytes(key);
    if (bytes === undefined) throw new CodecKeyError(`${field}.keys.${id}`, "expected a Uint8Array or a base64 string");
    if (!lengthOk(bytes.length)) throw new CodecKeyError(`${field}.keys.${id}`, `the key is ${bytes.length} bytes; expected ${wanted}`);
    keys.set(id, bytes);
  }
  if (typeof options.current !== "string") throw new CodecKeyError(`${field}.current`, "expected the id of one of the keys");
  const current = keys.get(options.current);
  if (current === undefined) throw new CodecKeyError(`${field}.current`, `unknown key id ${JSON.stringify(options.current.slice(0, 40))}`);
  if (options.required !== undefined && typeof options.required !== "boolean")
    throw new CodecKeyError(`${field}.required`, "expected a boolean");
  const keyObjects = new Map([...keys].map(([id, bytes]) => [id, createSecretKey(bytes)] as const));
  return {
    keys,
    keyObjects,
    currentId: options.current,
    current,
    currentObject: keyObjects.get(options.current) as KeyObject,
    required: options.required ?? true,
  };
}

function keyBytes(key: unknown): Buffer | undefined {
  if (key instanceof Uint8Array) return Buffer.from(key);
  if (typeof key !== "string" || !BASE64.test(key)) return undefined;
  return Buffer.from(key, key.includes("-") || key.includes("_") ? "base64url" : "base64");
}

class KeyedCodec implements Codec {
  readonly active = true;
  readonly encrypts: boolean;
  readonly #signing: Ring | undefined;
  readonly #encryption: Ring | undefined;

  constructor(signing: Ring | undefined, encryption: Ring | undefined) {
    this.#signing = signing;
    this.#encryption = encryption;
    this.encrypts = encryption !== undefined;
  }

  sealPayload(payloadJson: string, id: string, name: string): string {
    const enc = this.#encryption;
    if (enc === undefined) return payloadJson;
    const iv = nextIv();
    const cipher = createCipheriv("aes-256-gcm", enc.current, iv);
    cipher.setAAD(aad(enc.currentId, id, name));
    const ct = Buffer.concat([cipher.update(payloadJson, "utf8"), cipher.final()]);
    const data = Buffer.concat([iv, ct, cipher.getAuthTag()]).toString("base64url");
    return `${ENC_PREFIX}${enc.currentId}.${data}"}`;
  }

  openPayload(payload: unknown, id: string, name: string): unknown {
    const enc = this.#encryption;
    const sealed = sealedValue(payload);
    if (sealed === undefined) {
      if (enc?.required === true) throw new DecryptError("the payload is not encrypted, and this process requires encryption");
      return payload;
    }
    if (enc === undefined) throw new DecryptError("the payload is encrypted, and this process has no encryption key");
    const m = SEALED.exec(sealed);
    if (m === null) throw new DecryptError("the encrypted payload is malformed");
    const kid = m[1] as string;
    const key = enc.keys.get(kid);
    if (key === undefined)
      throw new DecryptError(`the payload is encrypted with key ${JSON.stringify(kid)}, which this process does not have`);
    const data = Buffer.from(m[2] as string, "base64url");
    if (data.length < IV_BYTES + TAG_BYTES) throw new DecryptError("the encrypted payload is malformed");
    let json: string;
    try {
      const decipher = createDecipheriv("aes-256-gcm", key, data.subarray(0, IV_BYTES));
      decipher.setAAD(aad(kid, id, name));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      json = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]).toString("utf8");
    } catch (error) {
      throw new DecryptError(`the payload does not decrypt with key ${JSON.stringify(kid)} (wrong key, or changed bytes)`, {
        cause: error,
      });
    }
    // As untrusted as any payload: the same depth limit and key checks as the envelope's decoding.
    try {
      return parseUntrustedJson(json, MAX_DEPTH);
    } catch (error) {
      throw new DecryptError(`the decrypted payload is not acceptable JSON: ${(error as Error).message}`, { cause: error });
    }
  }

  sign(text: string): string {
    const s = this.#signing;
    if (s === undefined) return text;
    return `${text.slice(0, -1)}${SIG_FIELD}${s.currentId}.${mac(s.currentObject, s.currentId, text).toString("base64url")}"}`;
  }

  verify(body: string): string {
    const s = this.#signing;
    if (s === undefined) return body;
    const at = body.lastIndexOf(SIG_FIELD);
    const m = at < 0 ? null : SIG_TAIL.exec(body.slice(at));
    if (m === null) {
      if (s.required) throw new SignatureError("the message is not signed, and this worker requires signatures");
      return body;
    }
    const kid = m[1] as string;
    const key = s.keyObjects.get(kid);
    if (key === undefined)
      throw new SignatureError(`the message is signed with key ${JSON.stringify(kid)}, which this process does not have`);
    const text = `${body.slice(0, at)}}`;
    const given = Buffer.from(m[2] as string, "base64url");
    const expected = mac(key, kid, text);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new SignatureError(`the message's signature (key ${JSON.stringify(kid)}) does not match its content`);
    }
    return text;
  }
}

/** The sealed string of an encrypted payload value (`{"$enc":"v1.…"}` and no other key), else undefined. */
export function sealedValue(payload: unknown): string | undefined {
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) return undefined;
  const value = (payload as { $enc?: unknown }).$enc;
  if (typeof value !== "string" || !value.startsWith("v1.")) return undefined;
  for (const k in payload) if (k !== "$enc") return undefined;
  return value;
}

/** Domain-separated MAC input: the format, the key id, then the envelope text (one update: cheaper than two). */
function mac(key: KeyObject, kid: string, text: string): Buffer {
  return createHmac("sha256", key).update(`jobs/sig/v1\n${kid}\n${text}`, "utf8").digest();
}

/** Random IVs drawn from the CSPRNG 256 at a time (one call per IV costs more than the encryption); each used once. */
const IV_POOL = Buffer.alloc(IV_BYTES * 256);
let ivAt = IV_POOL.length;

function nextIv(): Buffer {
  if (ivAt === IV_POOL.length) {
    randomFillSync(IV_POOL);
    ivAt = 0;
  }
  // A copy: the pool is refilled in place, and an IV must never change once used.
  const iv = Buffer.from(IV_POOL.subarray(ivAt, ivAt + IV_BYTES));
  ivAt += IV_BYTES;
  return iv;
}

/** Additional authenticated data: a sealed payload opens only inside the job it was sealed for. */
function aad(kid: string, id: string, name: string): Buffer {
  return Buffer.from(`jobs/enc/v1\n${kid}\n${id}\n${name}`, "utf8");
}
