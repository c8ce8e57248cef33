import type { IncomingMessage, ServerResponse } from "node:http";
import type { Claims } from "./claims.js";
import { CODE_INSUFFICIENT_USER_AUTHENTICATION, VerifierError, insufficient, noToken, writeError } from "./errors.js";
import type { Sources, Verifier } from "./verifier.js";

/**
 * A Requirement checks verified claims after the token itself passed:
 * it returns the refusal, or undefined. See requireScope and the others.
 */
export type Requirement = (claims: Claims | undefined) => VerifierError | undefined;

function requirement(want: string[], all: boolean, has: (c: Claims, w: string) => boolean, what: "scope" | "role"): Requirement {
  want = [...want];
  const param = what === "scope" ? want.join(" ") : ""; // roles are not scopes: no scope parameter for them
  return (c) => {
    if (want.length === 0) return undefined;
    if (c === undefined) return noToken();
    for (const w of want) {
      const ok = has(c, w);
      if (ok && !all) return undefined;
      if (!ok && all) return insufficient(`The access token lacks the ${what} ${w}.`, param);
    }
    if (all) return undefined;
    return insufficient(`The access token needs one of the ${what}s ${want.join(", ")}.`, param);
  };
}

/** scopes needs every one of the scopes (scope, scp or scopes); else 403 insufficient_scope. */
export const scopes = (...s: string[]): Requirement => requirement(s, true, (c, w) => c.scopes.includes(w), "scope");
/** anyScope needs one of the scopes. */
export const anyScope = (...s: string[]): Requirement => requirement(s, false, (c, w) => c.scopes.includes(w), "scope");
/** roles needs every one of the roles; else 403 insufficient_scope (RFC 6750 has no code of its own for roles). */
export const roles = (...r: string[]): Requirement => requirement(r, true, (c, w) => c.roles.includes(w), "role");
/** anyRole needs one of the roles. */
export const anyRole = (...r: string[]): Requirement => requirement(r, false, (c, w) => c.roles.includes(w), "role");

/**
 * acr needs the token's acr claim to be one of values (compared exactly;
 * an empty list accepts any) and, with maxAge (seconds), its auth_time to
 * be at most that old (a token without auth_time fails); else 401
 * insufficient_user_authentication (RFC 9470 section 3) whose challenge
 * names what failed: acr_values for the wrong class, max_age for a
 * sign-in too old, both when both fail. The answer is the Go verifier's
 * StepUp.Check, word for word. now defaults to Date.now; pass the
 * verifier's clock if it has its own.
 */
export function acr(values: string[], opt: { maxAge?: number; now?: () => number } = {}): Requirement {
  values = [...values];
  const maxAge = opt.maxAge !== undefined && opt.maxAge > 0 ? opt.maxAge : undefined;
  const now = opt.now ?? Date.now;
  return (c) => {
    if (values.length === 0 && maxAge === undefined) return undefined;
    if (c === undefined) return noToken();
    const badACR = values.length > 0 && (c.acr === undefined || c.acr === "" || !values.includes(c.acr));
    const tooOld = maxAge !== undefined && (c.auth_time === undefined || now() / 1000 - c.auth_time > maxAge);
    if (!badACR && !tooOld) return undefined;
    let what = "a sign-in";
    if (badACR) {
      // "second factor" only when a single factor would not do (pwd not accepted).
      what = values.includes("mfa") && !values.includes("pwd") ? "a sign-in with a second factor" : "another kind of sign-in";
      what += ` (acr ${values.join(" or ")})`;
    }
    if (tooOld) what += ` within the last ${Math.ceil(maxAge!)} seconds`;
    const e = new VerifierError(401, CODE_INSUFFICIENT_USER_AUTHENTICATION, `This resource needs ${what}.`, "insufficient_user_authentication");
    if (badACR) e.acrValues = values.join(" ");
    if (tooOld) e.maxAge = maxAge;
    return e;
  };
}

export interface MiddlewareOptions extends Sources {
  /** Let requests without any token through with no claims; a token that is there must still be valid. */
  optional?: boolean;
  /** Checks made after the token passed, in order (scopes, roles, acr). */
  require?: Requirement[];
  /** Replaces writeError as the answer to a refused request. */
  onError?: (err: VerifierError, req: IncomingMessage, res: ServerResponse) => void;
}

/** The claims the middleware attached to a request, or undefined. */
export function claimsOf(req: object): Claims | undefined {
  return (req as { keycard?: Claims }).keycard;
}

/**
 * authorize authenticates req and checks the requirements: the claims, or
 * undefined for an optional request without a token. It rejects with a
 * VerifierError.
 */
async function authorize(v: Verifier, req: IncomingMessage, opt: MiddlewareOptions): Promise<Claims | undefined> {
  let c: Claims | undefined;
  try {
    c = await v.authenticate(req, opt);
  } catch (e) {
    if (!(opt.optional && e instanceof VerifierError && e.reason === "no_token")) throw e;
  }
  if (c !== undefined || !opt.optional) {
    for (const r of opt.require ?? []) {
      const err = r(c);
      if (err) throw err;
    }
  }
  if (c !== undefined && opt.webSocket && (req.headers.upgrade ?? "").toLowerCase() === "websocket") stripWebSocketToken(req);
  return c;
}

/** stripWebSocketToken removes the token-carrying Sec-WebSocket-Protocol entry, so that no server selects it. */
function stripWebSocketToken(req: IncomingMessage): void {
  const v = req.headers["sec-websocket-protocol"];
  if (v === undefined) return;
  const rest = (Array.isArray(v) ? v.join(",") : v)
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== "" && !p.startsWith("keycard.bearer."));
  if (rest.length > 0) req.headers["sec-websocket-protocol"] = rest.join(", ");
  else delete req.headers["sec-websocket-protocol"];
}

function answer(opt: MiddlewareOptions, err: unknown, req: IncomingMessage, res: ServerResponse): void {
  const e = err instanceof VerifierError ? err : new VerifierError(401, "invalid_token", "The access token is invalid.", "invalid_token", err);
  if (opt.onError) opt.onError(e, req, res);
  else writeError(res, e);
}

/**
 * express returns Express (and Connect) middleware: a request with a
 * valid, unrevoked token (and the requirements met) goes on with its
 * claims in req.keycard; any other is answered per RFC 6750.
 */
export function express(v: Verifier, opt: MiddlewareOptions = {}) {
  return (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void => {
    authorize(v, req, opt).then(
      (c) => {
        (req as { keycard?: Claims }).keycard = c;
        next();
      },
      (err) => answer(opt, err, req, res),
    );
  };
}

/**
 * require returns Express middleware, to be placed after express(), that
 * checks more requirements for a route: requireScope("orders:write").
 */
export function require(...reqs: Requirement[]) {
  return (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void => {
    const c = claimsOf(req);
    for (const r of reqs) {
      const err = r(c);
      if (err) return writeError(res, err);
    }
    next();
  };
}

/** requireScope is require(scopes(...)) for Express. */
export const requireScope = (...s: string[]) => require(scopes(...s));
/** requireAnyScope is require(anyScope(...)) for Express. */
export const requireAnyScope = (...s: string[]) => require(anyScope(...s));
/** requireRole is require(roles(...)) for Express. */
export const requireRole = (...r: string[]) => require(roles(...r));
/** requireAnyRole is require(anyRole(...)) for Express. */
export const requireAnyRole = (...r: string[]) => require(anyRole(...r));

/** The parts of Fastify's request and reply used here. */
interface FastifyRequestLike {
  raw: IncomingMessage;
}
interface FastifyReplyLike {
  code(status: number): FastifyReplyLike;
  headers(h: Record<string, string>): FastifyReplyLike;
  send(body: string): unknown;
}

/**
 * fastify returns a Fastify onRequest or preHandler hook: a request with
 * a valid token goes on with its claims in request.keycard (and
 * request.raw.keycard); any other is answered per RFC 6750.
 *
 *   app.addHook("onRequest", fastify(v))
 *   app.get("/orders", { preHandler: fastify(v, { require: [scopes("orders:read")] }) }, handler)
 */
export function fastify(v: Verifier, opt: MiddlewareOptions = {}) {
  return async (request: FastifyRequestLike, reply: FastifyReplyLike): Promise<void> => {
    let c: Claims | undefined;
    try {
      c = await authorize(v, request.raw, opt);
    } catch (err) {
      const e = err instanceof VerifierError ? err : new VerifierError(401, "invalid_token", "The access token is invalid.", "invalid_token", err);
      await reply.code(e.status).headers(e.headers()).send(e.body());
      return;
    }
    (request as { keycard?: Claims }).keycard = c;
    (request.raw as { keycard?: Claims }).keycard = c;
  };
}

/**
 * handler wraps a node:http request listener: next runs with the verified
 * claims; refusals are answered per RFC 6750.
 *
 *   http.createServer(handler(v, (req, res, claims) => { … }, { require: [scopes("weather:read")] }))
 */
export function handler(
  v: Verifier,
  next: (req: IncomingMessage, res: ServerResponse, claims: Claims | undefined) => void,
  opt: MiddlewareOptions = {},
) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    authorize(v, req, opt).then(
      (c) => {
        (req as { keycard?: Claims }).keycard = c;
        next(req, res, c);
      },
      (err) => answer(opt, err, req, res),
    );
  };
}
