import type { ServerResponse } from "node:http";

/** Error codes of RFC 6750 section 3.1, RFC 6749, RFC 9449 and RFC 9470. */
export const CODE_INVALID_REQUEST = "invalid_request";
export const CODE_INVALID_TOKEN = "invalid_token";
export const CODE_INSUFFICIENT_SCOPE = "insufficient_scope";
export const CODE_TEMPORARILY_UNAVAILABLE = "temporarily_unavailable";
export const CODE_INVALID_DPOP_PROOF = "invalid_dpop_proof";
export const CODE_USE_DPOP_NONCE = "use_dpop_nonce";
export const CODE_INSUFFICIENT_USER_AUTHENTICATION = "insufficient_user_authentication";

/** The realm named in WWW-Authenticate challenges, as the Go verifier's. */
export const REALM = "keycard";

/** Why a request was refused, for the log (never sent to the client). */
export type Reason =
  | "no_token"
  | "malformed_request"
  | "invalid_token"
  | "revoked"
  | "insufficient_scope"
  | "insufficient_user_authentication"
  | "unavailable"
  | "dpop";

/**
 * VerifierError is a refusal with the HTTP answer that goes with it (RFC
 * 6750 section 3). description is safe to show to the client; cause is
 * for the log only.
 */
export class VerifierError extends Error {
  /** 400, 401, 403 or 503. */
  readonly status: number;
  /** "" (no credentials) or one of the CODE_ constants. */
  readonly code: string;
  readonly description: string;
  readonly reason: Reason;
  /** For insufficient_scope: the scopes the resource needs (space-separated). */
  scope = "";
  /** When set, the challenge is a DPoP one (RFC 9449 section 7.1) listing these algorithms. */
  dpopAlgs = "";
  /** For insufficient_user_authentication (RFC 9470 section 3): acceptable acr values, space-separated. */
  acrValues = "";
  /** For insufficient_user_authentication: the largest acceptable age of the authentication, in seconds (written rounded up). */
  maxAge: number | undefined = undefined;
  /** For use_dpop_nonce: the nonce to send back in the DPoP-Nonce header (RFC 9449 section 8). */
  nonce = "";

  constructor(status: number, code: string, description: string, reason: Reason, cause?: unknown) {
    super(cause instanceof Error ? `keycard: ${reason}: ${cause.message}` : `keycard: ${description}`, cause === undefined ? undefined : { cause });
    this.name = "VerifierError";
    this.status = status;
    this.code = code;
    this.description = description;
    this.reason = reason;
  }

  /** The WWW-Authenticate value for this refusal ("" for none). */
  challenge(): string {
    if (this.status !== 401 && this.status !== 403) return "";
    let b = this.dpopAlgs !== "" ? `DPoP realm="${REALM}"` : `Bearer realm="${REALM}"`;
    if (this.code !== "") {
      b += `, error="${this.code}", error_description="${quoteSafe(this.description)}"`;
    }
    if (this.scope !== "") b += `, scope="${quoteSafe(this.scope)}"`;
    if (this.dpopAlgs !== "") b += `, algs="${quoteSafe(this.dpopAlgs)}"`;
    if (this.acrValues !== "") b += `, acr_values="${quoteSafe(this.acrValues)}"`;
    // Quoted, as in RFC 9470's examples and the Go verifier; whole seconds, rounded up.
    if (this.maxAge !== undefined && this.maxAge > 0) b += `, max_age="${Math.ceil(this.maxAge)}"`;
    return b;
  }

  /** The response headers of this refusal. */
  headers(): Record<string, string> {
    const h: Record<string, string> = {};
    if (this.nonce !== "") h["DPoP-Nonce"] = this.nonce;
    const c = this.challenge();
    if (c !== "") h["WWW-Authenticate"] = c;
    if (this.status === 503) h["Retry-After"] = "5";
    h["Content-Type"] = "application/json";
    h["Cache-Control"] = "no-store";
    return h;
  }

  /** The JSON body, {"error","error_description"}, with a newline as the Go verifier writes it. */
  body(): string {
    const code = this.code === "" ? CODE_INVALID_TOKEN : this.code; // the body needs one; the challenge has none
    return JSON.stringify({ error: code, error_description: this.description }) + "\n";
  }
}

/**
 * quoteSafe keeps the characters RFC 6750 allows in error_description and
 * scope (%x20-21 / %x23-5B / %x5D-7E), dropping the others.
 */
function quoteSafe(s: string): string {
  let out = "";
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c >= 0x20 && c <= 0x7e && c !== 0x22 && c !== 0x5c) out += ch;
  }
  return out;
}

/**
 * writeError answers a node:http request with err: the status, the
 * WWW-Authenticate challenge for 401 and 403, Retry-After for 503, and the
 * body {"error","error_description"}. Anything but a VerifierError is
 * answered as an invalid token. The cause is never written.
 */
export function writeError(res: ServerResponse, err: unknown): void {
  const e = err instanceof VerifierError ? err : invalidToken("The access token is invalid.", err);
  res.writeHead(e.status, e.headers());
  res.end(e.body());
}

export function noToken(): VerifierError {
  return new VerifierError(401, "", "An access token is required.", "no_token");
}

export function badRequest(desc: string): VerifierError {
  return new VerifierError(400, CODE_INVALID_REQUEST, desc, "malformed_request");
}

export function invalidToken(desc: string, cause?: unknown): VerifierError {
  return new VerifierError(401, CODE_INVALID_TOKEN, desc, "invalid_token", cause);
}

export function revoked(): VerifierError {
  return new VerifierError(401, CODE_INVALID_TOKEN, "The access token was revoked.", "revoked");
}

export function insufficient(desc: string, scope: string): VerifierError {
  const e = new VerifierError(403, CODE_INSUFFICIENT_SCOPE, desc, "insufficient_scope");
  e.scope = scope;
  return e;
}

export function unavailable(): VerifierError {
  return new VerifierError(503, CODE_TEMPORARILY_UNAVAILABLE, "Tokens cannot be checked for revocation right now; try again later.", "unavailable");
}
