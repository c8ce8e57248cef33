/**
 * @keycard/browser: sign in with Keycard from a single-page app.
 *
 *     const kc = await KeycardClient.create({ issuer, clientId, redirectUri });
 *     const user = await kc.start();
 *     if (!user) await kc.signIn();
 *     const res = await kc.fetch("/api/orders");
 *
 * See README.md and docs/javascript.md.
 */
export { KeycardClient } from "./client.js";
export type { Options, Metadata, SignInOptions, EventMap } from "./client.js";
export { KeycardError } from "./errors.js";
export type { IDTokenClaims } from "./idtoken.js";
export type { SignedOutReason, Tokens, Locks, Channel } from "./session.js";
export { IndexedDBStore, MemoryStore } from "./store.js";
export type { Store } from "./store.js";
