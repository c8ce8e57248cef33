/**
 * Claims are the verified claims of an access token (RFC 9068 as Keycard
 * issues it), with the scopes of all three spellings and the actor chain
 * worked out once. A Claims object may be shared between requests (the
 * verification cache keeps it): it is frozen.
 */
export interface Claims {
  readonly iss: string;
  readonly sub: string;
  readonly aud: readonly string[];
  /** Seconds since the epoch. */
  readonly exp: number;
  readonly nbf: number | undefined;
  readonly iat: number | undefined;
  readonly jti: string;
  /** The session the token belongs to. */
  readonly sid: string;
  readonly client_id: string;
  readonly scope: string;
  readonly roles: readonly string[];
  readonly auth_time: number | undefined;
  /** The authentication context class, when the issuer sets one. */
  readonly acr: string | undefined;
  /** The thumbprint of the DPoP key the token is bound to (cnf.jkt), or "". */
  readonly jkt: string;
  /** The kid of the key that signed the token. */
  readonly kid: string;
  /** scope split on spaces, then scp, then scopes, each once. */
  readonly scopes: readonly string[];
  /** The act chain of a token from token exchange (RFC 8693 section 4.1), most recent first. */
  readonly actors: readonly string[];
  /** Every claim of the payload, as parsed. */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** A claim with the wrong type or value. */
export class InvalidClaimError extends Error {
  constructor(message: string) {
    super("keycard: invalid claim: " + message);
    this.name = "InvalidClaimError";
  }
}

const MAX_NUMERIC_DATE = 253402300799; // 9999-12-31T23:59:59Z

function str(p: Record<string, unknown>, name: string): string {
  const v = p[name];
  if (v === undefined) return "";
  if (typeof v !== "string") throw new InvalidClaimError(`${name} must be a string`);
  return v;
}

function date(p: Record<string, unknown>, name: string): number | undefined {
  const v = p[name];
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || v > MAX_NUMERIC_DATE) throw new InvalidClaimError(`${name} must be a NumericDate`);
  return v;
}

function strings(p: Record<string, unknown>, name: string): string[] {
  const v = p[name];
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((s) => typeof s !== "string")) throw new InvalidClaimError(`${name} must be an array of strings`);
  return v as string[];
}

function actors(v: unknown): string[] {
  const out: string[] = [];
  while (v !== undefined) {
    if (v === null || typeof v !== "object" || Array.isArray(v)) throw new InvalidClaimError("act must be an object");
    const a = v as Record<string, unknown>;
    for (const k of Object.keys(a)) {
      if (k !== "sub" && k !== "act" && (k.toLowerCase() === "sub" || k.toLowerCase() === "act")) throw new InvalidClaimError("case-variant member in act");
    }
    if (typeof a.sub !== "string" || a.sub === "") throw new InvalidClaimError("act needs a sub");
    out.push(a.sub);
    v = a.act;
  }
  return out;
}

/**
 * readClaims reads a strictly parsed payload with the types the Go jwt
 * package requires; kid is the header's.
 */
export function readClaims(p: Record<string, unknown>, kid: string): Claims {
  const aud = p.aud;
  let audList: string[];
  if (aud === undefined) audList = [];
  else if (typeof aud === "string") audList = [aud];
  else if (Array.isArray(aud) && aud.every((a) => typeof a === "string")) audList = aud as string[];
  else throw new InvalidClaimError("aud must be a string or an array of strings");
  let jkt = "";
  if (p.cnf !== undefined) {
    if (p.cnf === null || typeof p.cnf !== "object" || Array.isArray(p.cnf)) throw new InvalidClaimError("cnf must be an object");
    const j = (p.cnf as Record<string, unknown>).jkt;
    if (j !== undefined && typeof j !== "string") throw new InvalidClaimError("cnf jkt must be a string");
    jkt = (j as string | undefined) ?? "";
  }
  const scope = str(p, "scope");
  const scp = strings(p, "scp");
  const scopesClaim = strings(p, "scopes");
  const scopes: string[] = [];
  for (const s of [...scope.split(/[ \t\n\r\v\f]+/), ...scp, ...scopesClaim]) if (s !== "" && !scopes.includes(s)) scopes.push(s);
  const acr = p.acr;
  if (acr !== undefined && typeof acr !== "string") throw new InvalidClaimError("acr must be a string");
  const exp = date(p, "exp");
  return Object.freeze({
    iss: str(p, "iss"),
    sub: str(p, "sub"),
    aud: Object.freeze(audList),
    exp: exp ?? 0,
    nbf: date(p, "nbf"),
    iat: date(p, "iat"),
    jti: str(p, "jti"),
    sid: str(p, "sid"),
    client_id: str(p, "client_id"),
    scope,
    roles: Object.freeze(strings(p, "roles")),
    auth_time: date(p, "auth_time"),
    acr: acr as string | undefined,
    jkt,
    kid,
    scopes: Object.freeze(scopes),
    actors: Object.freeze(actors(p.act)),
    raw: p,
  });
}
