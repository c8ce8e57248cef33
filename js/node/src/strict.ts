// The strictness the Go token core (jose, jwt) applies before any
// signature check, which panva's jose leaves to the caller: jose decodes
// base64url leniently and parses JSON with JSON.parse, which keeps the
// last of two members with one name. Everything here refuses what
// Keycard's Go packages refuse, so that a token means the same to both
// (testdata/conformance runs the same attack tokens through each).

/** The largest compact JWS accepted, in bytes (Go's jose.DefaultMaxTokenSize). */
export const MAX_TOKEN_SIZE = 8 << 10;
/** The deepest nesting of arrays and objects accepted in a header or payload. */
export const MAX_JSON_DEPTH = 32;
/** The longest kid accepted, in bytes. */
export const MAX_KEY_ID_LENGTH = 256;

/** Registered JOSE header names: a member equal to one only when case is ignored is refused. */
const HEADER_NAMES = ["alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256", "typ", "cty", "crit", "b64"];
/** The claim names the Go parser knows: a case variant of one is refused. */
const CLAIM_NAMES = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "sid", "client_id", "scope", "roles", "auth_time", "scp", "scopes", "act", "cnf"];

/** A token that breaks the compact serialization or the JSON rules. */
export class MalformedTokenError extends Error {
  constructor(message: string) {
    super("keycard: malformed token: " + message);
    this.name = "MalformedTokenError";
  }
}

const B64URL = /^[A-Za-z0-9_-]*$/;
const B64_VALUES = (() => {
  const t = new Int8Array(128).fill(-1);
  const abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (let i = 0; i < abc.length; i++) t[abc.charCodeAt(i)] = i;
  return t;
})();

/**
 * decodeSegment decodes one segment of a compact JWS as canonical
 * base64url (RFC 7515 section 2): the URL-safe alphabet, no padding, no
 * white space, and zero trailing bits, so that one byte string has one
 * spelling only.
 */
export function decodeSegment(seg: string, what: string): Buffer {
  if (!B64URL.test(seg) || seg.length % 4 === 1) {
    throw new MalformedTokenError(what + " is not base64url");
  }
  const rest = seg.length % 4;
  if (rest !== 0) {
    const last = B64_VALUES[seg.charCodeAt(seg.length - 1)]!;
    if ((rest === 2 && (last & 0x0f) !== 0) || (rest === 3 && (last & 0x03) !== 0)) {
      throw new MalformedTokenError(what + " has non-zero trailing bits");
    }
  }
  return Buffer.from(seg, "base64url");
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** A parsed compact JWS: its parts and its header and payload as strict JSON. */
export interface CompactParts {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
  /** The signature's bytes. */
  signature: Buffer;
}

/**
 * splitToken checks a compact JWS the way the Go core does before it looks
 * at a key: size, three non-empty segments (five is an encrypted JWT,
 * refused), canonical base64url, header and payload strict JSON objects
 * (valid UTF-8, no duplicate members, no lone surrogates, at most 32
 * levels deep, no case variants of registered names), no "crit" or "b64"
 * in the header.
 */
export function splitToken(token: string): CompactParts {
  if (token.length > MAX_TOKEN_SIZE || Buffer.byteLength(token) > MAX_TOKEN_SIZE) {
    throw new MalformedTokenError(`larger than ${MAX_TOKEN_SIZE} bytes`);
  }
  if (token.startsWith("{")) throw new MalformedTokenError("JSON serialization");
  const parts = token.split(".");
  if (parts.length === 5) throw new MalformedTokenError("encrypted JWT (JWE)");
  if (parts.length !== 3 || parts[0] === "" || parts[1] === "" || parts[2] === "") {
    throw new MalformedTokenError("not three non-empty segments");
  }
  const header = parseObject(decodeSegment(parts[0]!, "header"), "header", HEADER_NAMES);
  for (const name of Object.keys(header)) {
    if (name === "crit" || name === "b64") throw new MalformedTokenError(`critical header extension "${name}" not supported`);
  }
  if (typeof header.alg !== "string") throw new MalformedTokenError("header alg must be a string");
  for (const n of ["kid", "typ", "cty"]) {
    if (n in header && typeof header[n] !== "string") throw new MalformedTokenError(`header ${n} must be a string`);
  }
  if (typeof header.kid === "string" && Buffer.byteLength(header.kid) > MAX_KEY_ID_LENGTH) {
    throw new MalformedTokenError(`kid longer than ${MAX_KEY_ID_LENGTH} bytes`);
  }
  const payload = parseObject(decodeSegment(parts[1]!, "payload"), "payload", CLAIM_NAMES);
  const signature = decodeSegment(parts[2]!, "signature");
  return { header, payload, signature };
}

/**
 * parseObject decodes bytes as one strict JSON object: see StrictJSON. A
 * top-level member whose name equals one of registered only when case is
 * ignored, or equals another top-level member's name when case is
 * ignored, is refused, so that no reader that folds case sees another
 * value.
 */
export function parseObject(bytes: Uint8Array, what: string, registered: readonly string[]): Record<string, unknown> {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new MalformedTokenError(what + " is not valid UTF-8");
  }
  const v = fastParse(text) ?? new StrictJSON(text, what).parseDocument();
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new MalformedTokenError(what + " is not a JSON object");
  const names = Object.keys(v);
  let folded = false;
  for (const name of names) {
    if (NEEDS_FOLDING.test(name)) {
      folded = true;
      break;
    }
  }
  const canon = foldedNames(registered);
  const seen = folded ? new Set<string>() : undefined;
  for (const name of names) {
    const lower = folded ? name.toLowerCase() : name;
    const r = canon.get(lower);
    if (r !== undefined && r !== name) throw new MalformedTokenError(`${what} has the case-variant name ${JSON.stringify(name)}`);
    if (seen !== undefined) {
      if (seen.has(lower)) throw new MalformedTokenError(`${what} has case-variant member names ${JSON.stringify(name)}`);
      seen.add(lower);
    }
  }
  return v as Record<string, unknown>;
}

/** A name that lower-casing may change: upper-case ASCII, or anything beyond ASCII (the Kelvin sign folds to k). */
const NEEDS_FOLDING = /[A-Z\u0080-\uffff]/;

const foldedCache = new Map<readonly string[], Map<string, string>>();

/** foldedNames maps the lower-case spelling of each registered name to the name. */
function foldedNames(registered: readonly string[]): Map<string, string> {
  let m = foldedCache.get(registered);
  if (m === undefined) {
    m = new Map(registered.map((r) => [r.toLowerCase(), r]));
    if (foldedCache.size < 16) foldedCache.set(registered, m);
  }
  return m;
}

/**
 * fastParse is JSON.parse where it provably agrees with StrictJSON, or
 * undefined: when the text is exactly what JSON.stringify writes of the
 * parsed value, it had no duplicate member (JSON.parse would have dropped
 * one), no white space or other spelling choices; without "\\u" it has no
 * escaped lone surrogate (the text itself is well-formed UTF-8); with
 * fewer than MAX_JSON_DEPTH brackets it is not nested too deep. The
 * compact JSON Keycard's Go encoder writes takes this path.
 */
function fastParse(text: string): unknown {
  if (text.includes("\\u")) return undefined;
  let brackets = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c === 0x7b || c === 0x5b) && ++brackets >= MAX_JSON_DEPTH) return undefined;
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined; // StrictJSON says why
  }
  return JSON.stringify(v) === text ? v : undefined;
}

/**
 * StrictJSON is a JSON parser (RFC 8259) that refuses what JSON.parse lets
 * through: a member name used twice in one object (after unescaping),
 * escapes of lone UTF-16 surrogates, and nesting deeper than
 * MAX_JSON_DEPTH. Objects come out with a null prototype, so "__proto__"
 * is an ordinary member.
 */
export class StrictJSON {
  private i = 0;
  constructor(private readonly s: string, private readonly what: string) {}

  parseDocument(): unknown {
    this.space();
    const v = this.value(1);
    this.space();
    if (this.i !== this.s.length) this.fail("trailing data");
    return v;
  }

  private fail(why: string): never {
    throw new MalformedTokenError(`${this.what}: ${why} at offset ${this.i}`);
  }

  private space(): void {
    const s = this.s;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
      this.i++;
    }
  }

  private value(depth: number): unknown {
    const c = this.s[this.i];
    switch (c) {
      case "{":
        return this.object(depth);
      case "[":
        return this.array(depth);
      case '"':
        return this.string();
      case "t":
        return this.literal("true", true);
      case "f":
        return this.literal("false", false);
      case "n":
        return this.literal("null", null);
      default:
        return this.number();
    }
  }

  private literal<T>(word: string, v: T): T {
    if (!this.s.startsWith(word, this.i)) this.fail("invalid literal");
    this.i += word.length;
    return v;
  }

  private number(): number {
    const re = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
    re.lastIndex = this.i;
    const m = re.exec(this.s);
    if (!m || m[0] === "" || m[0] === "-") this.fail("invalid value");
    this.i += m[0].length;
    return Number(m[0]);
  }

  private object(depth: number): Record<string, unknown> {
    if (depth > MAX_JSON_DEPTH) this.fail(`nested deeper than ${MAX_JSON_DEPTH}`);
    this.i++; // {
    const out: Record<string, unknown> = Object.create(null);
    this.space();
    if (this.s[this.i] === "}") {
      this.i++;
      return out;
    }
    for (;;) {
      this.space();
      if (this.s[this.i] !== '"') this.fail("member name must be a string");
      const name = this.string();
      if (Object.prototype.hasOwnProperty.call(out, name)) this.fail(`duplicate member ${JSON.stringify(name)}`);
      this.space();
      if (this.s[this.i] !== ":") this.fail("missing ':'");
      this.i++;
      this.space();
      out[name] = this.value(depth + 1);
      this.space();
      const c = this.s[this.i++];
      if (c === "}") return out;
      if (c !== ",") this.fail("missing ',' or '}'");
    }
  }

  private array(depth: number): unknown[] {
    if (depth > MAX_JSON_DEPTH) this.fail(`nested deeper than ${MAX_JSON_DEPTH}`);
    this.i++; // [
    const out: unknown[] = [];
    this.space();
    if (this.s[this.i] === "]") {
      this.i++;
      return out;
    }
    for (;;) {
      this.space();
      out.push(this.value(depth + 1));
      this.space();
      const c = this.s[this.i++];
      if (c === "]") return out;
      if (c !== ",") this.fail("missing ',' or ']'");
    }
  }

  private string(): string {
    const s = this.s;
    let i = ++this.i; // past the opening quote
    let out = "";
    let start = i;
    for (;;) {
      if (i >= s.length) {
        this.i = i;
        this.fail("unterminated string");
      }
      const c = s.charCodeAt(i);
      if (c === 0x22) break;
      if (c < 0x20) {
        this.i = i;
        this.fail("control character in a string");
      }
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += s.slice(start, i);
      const e = s[i + 1];
      switch (e) {
        case '"': out += '"'; i += 2; break;
        case "\\": out += "\\"; i += 2; break;
        case "/": out += "/"; i += 2; break;
        case "b": out += "\b"; i += 2; break;
        case "f": out += "\f"; i += 2; break;
        case "n": out += "\n"; i += 2; break;
        case "r": out += "\r"; i += 2; break;
        case "t": out += "\t"; i += 2; break;
        case "u": {
          const hi = this.hex4(i + 2);
          i += 6;
          if (hi >= 0xd800 && hi <= 0xdbff) {
            const lo = s[i] === "\\" && s[i + 1] === "u" ? this.hex4(i + 2) : -1;
            if (lo < 0xdc00 || lo > 0xdfff) {
              this.i = i;
              this.fail("lone surrogate escape");
            }
            out += String.fromCharCode(hi, lo);
            i += 6;
          } else if (hi >= 0xdc00 && hi <= 0xdfff) {
            this.i = i;
            this.fail("lone surrogate escape");
          } else {
            out += String.fromCharCode(hi);
          }
          break;
        }
        default:
          this.i = i;
          this.fail("invalid escape");
      }
      start = i;
    }
    out += s.slice(start, i);
    this.i = i + 1;
    return out;
  }

  private hex4(at: number): number {
    const h = this.s.slice(at, at + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) {
      this.i = at;
      this.fail("invalid \\u escape");
    }
    return parseInt(h, 16);
  }
}
