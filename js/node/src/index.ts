// @keycard/node: verify Keycard access tokens in Node.js services.
export { Verifier, discover, queryHasToken, ACCESS_COOKIE, WEBSOCKET_PROTOCOL_PREFIX, DEFAULT_LEEWAY_S, MAX_LEEWAY_S, DEFAULT_TYPE, DEFAULT_CACHE_SIZE } from "./verifier.js";
export type { VerifierConfig, Sources, RequestLike } from "./verifier.js";
export type { Claims } from "./claims.js";
export {
  VerifierError,
  writeError,
  REALM,
  CODE_INVALID_REQUEST,
  CODE_INVALID_TOKEN,
  CODE_INSUFFICIENT_SCOPE,
  CODE_TEMPORARILY_UNAVAILABLE,
  CODE_INVALID_DPOP_PROOF,
  CODE_USE_DPOP_NONCE,
  CODE_INSUFFICIENT_USER_AUTHENTICATION,
} from "./errors.js";
export type { Reason } from "./errors.js";
export {
  express,
  fastify,
  handler,
  require,
  requireScope,
  requireAnyScope,
  requireRole,
  requireAnyRole,
  scopes,
  anyScope,
  roles,
  anyRole,
  acr,
  claimsOf,
} from "./middleware.js";
export type { Requirement, MiddlewareOptions } from "./middleware.js";
export { RemoteKeySet, parseKeySet } from "./keyset.js";
export type { KeySetStatus, RemoteKeySetOptions, Logger } from "./keyset.js";
export { RevocationSet } from "./revocation.js";
export type { Entry } from "./revocation.js";
export { Follower, MODE_STREAM, MODE_LONG_POLL } from "./follower.js";
export type { FollowerOptions, FollowerStatus } from "./follower.js";
export { DPoPChecker, Nonces, accessTokenHash, normalizeURL } from "./dpop.js";
export type { DPoPOptions, Proof } from "./dpop.js";

import type { Claims as VerifiedClaims } from "./claims.js";

declare module "node:http" {
  interface IncomingMessage {
    /**
     * The verified claims that @keycard/node's middleware (express,
     * handler; fastify on request.raw) attached, or undefined for an
     * optional request without a token.
     */
    keycard?: VerifiedClaims;
  }
}
