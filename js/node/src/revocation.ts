/** Kinds of revocation feed entries (docs/http-api.md, "Revocation feed"). */
export const KIND_SESSION = "session";
export const KIND_TOKEN = "token";
export const KIND_USER = "user";
export const KIND_ALL = "all";
export const KIND_KEY = "key";

/** One entry of the auth server's revocation feed, as served on the wire. */
export interface Entry {
  seq: number;
  kind: string;
  value: string;
  /** RFC 3339 with microseconds: when the revocation happened; the cut-off for user and all. */
  at: string;
  /** RFC 3339: when the entry can match no valid token any more; Go's zero time never expires. */
  expires_at: string;
}

interface Cutoff {
  at: number; // Unix microseconds
  expires: number; // Unix microseconds, Infinity: never
}

const GO_ZERO_TIME_MS = Date.parse("0001-01-01T00:00:00Z"); // Go's zero time.Time
const RFC3339 = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/i;

/**
 * parseMicros reads an RFC 3339 time to Unix microseconds, keeping the
 * microseconds Date.parse would drop: iat is compared exactly against
 * cut-offs. Go's zero time (0001-01-01T00:00:00Z) is Infinity when
 * zeroIsNever is set. It throws on anything else.
 */
export function parseMicros(s: unknown, zeroIsNever: boolean): number {
  const m = typeof s === "string" ? RFC3339.exec(s) : null;
  if (!m) throw new Error("keycard: revocation entry time is not RFC 3339");
  const ms = Date.parse(m[1]! + m[3]!);
  if (Number.isNaN(ms)) throw new Error("keycard: revocation entry time is not RFC 3339");
  if (zeroIsNever && ms === GO_ZERO_TIME_MS && (m[2] ?? "").replace(/0/g, "") === "") return Infinity;
  const frac = (m[2] ?? "").padEnd(6, "0").slice(0, 6);
  return ms * 1000 + Number(frac);
}

/**
 * RevocationSet is the in-memory set of what the revocation feed revokes:
 * session ids, token ids (jti), per-user cut-offs, a global cut-off and
 * signing key ids. revoked() is a few Map lookups: no allocation, no
 * parsing per request.
 */
export class RevocationSet {
  private sessions = new Map<string, number>();
  private tokens = new Map<string, number>();
  private keys = new Map<string, number>();
  private users = new Map<string, Cutoff>();
  private all: Cutoff | undefined;
  private skippedCount = 0;

  /**
   * revoked reports whether an access token with header kid and claims
   * sub, sid, jti and iat (seconds) is revoked. Empty strings match
   * nothing; iat is compared exactly with the cut-offs' microseconds, so a
   * token issued in the cut-off's second but after it is refused too (it
   * fails closed). A missing iat (0) is before every cut-off.
   */
  revoked(kid: string, sub: string, sid: string, jti: string, iat: number): boolean {
    const t = iat * 1e6;
    if (this.all !== undefined && t < this.all.at) return true;
    if (kid !== "" && this.keys.has(kid)) return true;
    if (sid !== "" && this.sessions.has(sid)) return true;
    if (jti !== "" && this.tokens.has(jti)) return true;
    if (sub !== "") {
      const c = this.users.get(sub);
      if (c !== undefined && t < c.at) return true;
    }
    return false;
  }

  /**
   * apply adds one entry and reports whether it revokes a key the set did
   * not hold. Unknown kinds, and entries without the value their kind
   * needs, are counted as skipped. Several cut-offs of one user (or global
   * ones) keep the latest.
   */
  apply(e: Entry): boolean {
    let at: number, exp: number;
    try {
      at = parseMicros(e.at, false);
      exp = parseMicros(e.expires_at, true);
    } catch {
      this.skippedCount++;
      return false;
    }
    const value = typeof e.value === "string" ? e.value : "";
    switch (e.kind) {
      case KIND_SESSION:
        return this.addValue(this.sessions, value, exp), false;
      case KIND_TOKEN:
        return this.addValue(this.tokens, value, exp), false;
      case KIND_KEY: {
        const held = this.keys.has(value);
        this.addValue(this.keys, value, exp);
        return value !== "" && !held;
      }
      case KIND_USER: {
        if (value === "") {
          this.skippedCount++;
          return false;
        }
        this.users.set(value, merge(this.users.get(value), { at, expires: exp }));
        return false;
      }
      case KIND_ALL:
        this.all = merge(this.all, { at, expires: exp });
        return false;
      default:
        this.skippedCount++;
        return false;
    }
  }

  private addValue(m: Map<string, number>, v: string, exp: number): void {
    if (v === "") {
      this.skippedCount++;
      return;
    }
    const old = m.get(v);
    if (old === undefined || exp > old) m.set(v, exp);
  }

  /**
   * reset replaces what the set holds with entries (a snapshot of the
   * feed) and returns the ids of revoked keys it did not hold before.
   * Requests in between see the old set or the new one, never a mix
   * (JavaScript runs this to the end before any request).
   */
  reset(entries: readonly Entry[]): string[] {
    const before = this.keys;
    this.sessions = new Map();
    this.tokens = new Map();
    this.keys = new Map();
    this.users = new Map();
    this.all = undefined;
    for (const e of entries) this.apply(e);
    const fresh: string[] = [];
    for (const kid of this.keys.keys()) if (!before.has(kid)) fresh.push(kid);
    return fresh;
  }

  /**
   * prune drops the entries that can match no valid token any more
   * (expires before now, in milliseconds) and returns how many. Revoked
   * keys are never pruned: a leaked key could have signed tokens with any
   * expiry.
   */
  prune(nowMs: number): number {
    const t = nowMs * 1000;
    let n = 0;
    for (const m of [this.sessions, this.tokens]) {
      for (const [v, exp] of m) if (exp < t) (m.delete(v), n++);
    }
    for (const [v, c] of this.users) if (c.expires < t) (this.users.delete(v), n++);
    if (this.all !== undefined && this.all.expires < t) (this.all = undefined, n++);
    return n;
  }

  /** The number of entries held, a global cut-off counting one. */
  get size(): number {
    return this.sessions.size + this.tokens.size + this.keys.size + this.users.size + (this.all ? 1 : 0);
  }

  /** How many entries were ignored: unknown kinds, missing values, bad times. */
  get skipped(): number {
    return this.skippedCount;
  }
}

function merge(a: Cutoff | undefined, b: Cutoff): Cutoff {
  if (a === undefined) return b;
  return { at: Math.max(a.at, b.at), expires: Math.max(a.expires, b.expires) };
}
