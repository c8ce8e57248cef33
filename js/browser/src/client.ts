import { random } from "./base64url.js";
import * as dpop from "./dpop.js";
import { KeycardError } from "./errors.js";
import { type IDTokenClaims, verifyIDToken } from "./idtoken.js";
import * as pkce from "./pkce.js";
import { type Grant, Session, type SignedOutReason, type Tokens, type Locks, type Channel } from "./session.js";
import { IndexedDBStore, type Store } from "./store.js";

/** Options configure a KeycardClient. */
export interface Options {
  /** The issuer's URL, such as "https://auth.example.com"; its discovery document is read from there. */
  issuer: string;
  /** The client id of a public client of the authorization_code and refresh_token grants. */
  clientId: string;
  /** The redirect URI registered for the client: the page that calls start() after the sign-in. */
  redirectUri: string;
  /** Where the end_session_endpoint sends the browser after a sign-out; it must be registered. */
  postLogoutRedirectUri?: string;
  /** The scopes to ask for; "openid profile" by default. */
  scope?: string;
  /** How long before expiry an access token is renewed, in seconds (at most half its lifetime); 60 by default. */
  refreshMargin?: number;
  /** How long a new tab waits for another tab's tokens before refreshing itself, in ms; 1000 by default. */
  peerWait?: number;
  /** Replacements of the platform's parts, for tests: fetch, the store, the locks, the channel. */
  fetch?: typeof fetch;
  store?: Store;
  locks?: Locks;
  channel?: Channel;
}

/** Metadata is the part of the discovery document the client reads. */
export interface Metadata {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  jwks_uri: string;
  end_session_endpoint?: string;
  revocation_endpoint?: string;
  userinfo_endpoint?: string;
  authorization_response_iss_parameter_supported?: boolean;
}

/** SignInOptions are the authorization request's optional parts. */
export interface SignInOptions {
  /** Where start() sends the page back to after the sign-in: a path of this origin; the current page by default. */
  returnTo?: string;
  /** OpenID Connect prompt: "none", "login", "consent", "select_account". */
  prompt?: string;
  /** Fills in the username on the sign-in page. */
  loginHint?: string;
}

/** Events the client emits. */
export interface EventMap {
  /** New tokens in this tab: a sign-in, a refresh here or in another tab. */
  tokens: { claims?: IDTokenClaims; expiresAt: number };
  /** The session ended: signed out here or in another tab, or refused by the server (reason "invalid_grant"). */
  signedout: { reason: SignedOutReason };
}

interface Pending {
  state: string;
  nonce: string;
  verifier: string;
  returnTo: string;
}

const skewSeconds = 60;

/** How long a token request may take, in ms. */
const tokenTimeoutMs = 30_000;

/**
 * KeycardClient signs a single-page app in with Keycard (authorization
 * code with PKCE S256, state, nonce and RFC 9207 iss, the ID token
 * checked with WebCrypto), keeps the access token in this tab's memory
 * and the DPoP-bound refresh token, with its non-extractable key, in
 * IndexedDB, renews tokens once for all tabs (Web Lock +
 * BroadcastChannel), and calls APIs with DPoP proofs through fetch().
 */
export class KeycardClient {
  private session: Session;
  private listeners: { [K in keyof EventMap]: Set<(e: EventMap[K]) => void> } = { tokens: new Set(), signedout: new Set() };
  private keyPair: Promise<CryptoKeyPair> | undefined;
  private nonces = new Map<string, string>();
  private keys: JsonWebKey[] | undefined;
  private readonly fetchImpl: typeof fetch;
  private readonly store: Store;

  private constructor(readonly options: Options, readonly metadata: Metadata) {
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    // One lock, channel and database per issuer and client: two apps on
    // one origin keep their sessions apart.
    const lockName = `keycard:${options.issuer}:${options.clientId}`;
    this.store = options.store ?? new IndexedDBStore(lockName);
    this.session = new Session(
      {
        locks: options.locks ?? (navigator.locks as unknown as Locks),
        channel: options.channel ?? new BroadcastChannel(lockName),
        store: this.store,
        lockName,
        refresh: (rt) => this.refreshGrant(rt),
        peerWait: options.peerWait ?? 1000,
        margin: (options.refreshMargin ?? 60) * 1000,
        now: () => Date.now(),
        setTimeout: (f, ms) => setTimeout(f, ms),
        clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
      },
      {
        tokens: (t) => this.emit("tokens", { claims: t.claims, expiresAt: t.expiresAt }),
        signedOut: (reason) => this.emit("signedout", { reason }),
      },
    );
  }

  /** create reads the issuer's discovery document and returns a client. */
  static async create(options: Options): Promise<KeycardClient> {
    if (!globalThis.crypto?.subtle || (!options.locks && !globalThis.navigator?.locks)) {
      throw new KeycardError("unsupported", "WebCrypto and Web Locks are needed: serve the page over https (or from localhost)");
    }
    const f = options.fetch ?? globalThis.fetch.bind(globalThis);
    const res = await f(options.issuer.replace(/\/$/, "") + "/.well-known/openid-configuration");
    if (!res.ok) throw new KeycardError("http_error", `discovery: ${res.status}`);
    const m = (await res.json()) as Metadata;
    if (m.issuer !== options.issuer.replace(/\/$/, "")) throw new KeycardError("issuer_mismatch", "the discovery document names another issuer");
    for (const k of ["authorization_endpoint", "token_endpoint", "jwks_uri"] as const) {
      if (typeof m[k] !== "string") throw new KeycardError("invalid_response", `discovery: no ${k}`);
    }
    return new KeycardClient(options, m);
  }

  /** on subscribes to an event and returns the function that unsubscribes. */
  on<K extends keyof EventMap>(event: K, f: (e: EventMap[K]) => void): () => void {
    this.listeners[event].add(f);
    return () => this.listeners[event].delete(f);
  }

  private emit<K extends keyof EventMap>(event: K, e: EventMap[K]): void {
    for (const f of this.listeners[event]) {
      try { f(e); } catch (err) { console.error(err); }
    }
  }

  private pendingKey(): string {
    return `keycard:${this.options.clientId}:pending`;
  }

  private dpopKey(): Promise<CryptoKeyPair> {
    if (!this.keyPair) {
      const name = `dpop:${this.options.clientId}`;
      this.keyPair = (async () => {
        const saved = await this.store.get<CryptoKeyPair>(name);
        if (saved) return saved;
        const made = await dpop.generateKey();
        await this.store.put(name, made);
        return made;
      })();
      this.keyPair.catch(() => { this.keyPair = undefined; });
    }
    return this.keyPair;
  }

  /**
   * signIn sends the browser to the authorization endpoint: code flow,
   * PKCE S256, a new state and nonce (kept in sessionStorage until the
   * callback), and dpop_jkt, which binds the code to this browser's DPoP
   * key. It does not return.
   */
  async signIn(opt: SignInOptions = {}): Promise<never> {
    const p: Pending = { state: random(16), nonce: random(16), verifier: pkce.newVerifier(), returnTo: opt.returnTo ?? location.pathname + location.search + location.hash };
    const jkt = await dpop.thumbprint(await dpop.publicJwk(await this.dpopKey()));
    sessionStorage.setItem(this.pendingKey(), JSON.stringify(p));
    const q = new URLSearchParams({
      response_type: "code", client_id: this.options.clientId, redirect_uri: this.options.redirectUri,
      scope: this.options.scope ?? "openid profile", state: p.state, nonce: p.nonce,
      code_challenge: await pkce.challenge(p.verifier), code_challenge_method: "S256", dpop_jkt: jkt,
    });
    if (opt.prompt) q.set("prompt", opt.prompt);
    if (opt.loginHint) q.set("login_hint", opt.loginHint);
    location.assign(this.metadata.authorization_endpoint + "?" + q.toString());
    return new Promise<never>(() => {});
  }

  /** isCallback reports whether url is the redirect URI with an authorization response. */
  isCallback(url: string = location.href): boolean {
    const u = new URL(url);
    const r = new URL(this.options.redirectUri);
    return u.origin + u.pathname === r.origin + r.pathname && (u.searchParams.has("code") || u.searchParams.has("error")) && u.searchParams.has("state");
  }

  /**
   * handleCallback completes a sign-in from the authorization response in
   * url: the state must be this browser's pending one (used once), iss
   * the issuer (RFC 9207), the code is exchanged with the PKCE verifier
   * and a DPoP proof, and the ID token's signature, iss, aud, exp and
   * nonce are checked. It returns where signIn was asked to come back.
   */
  async handleCallback(url: string = location.href): Promise<{ returnTo: string; claims?: IDTokenClaims }> {
    const q = new URL(url).searchParams;
    const raw = sessionStorage.getItem(this.pendingKey());
    sessionStorage.removeItem(this.pendingKey());
    let p: Pending | undefined;
    try { p = raw ? (JSON.parse(raw) as Pending) : undefined; } catch { p = undefined; }
    if (!p || q.get("state") !== p.state) throw new KeycardError("state_mismatch", "the response is not for a sign-in this browser started");
    if (q.get("iss") !== this.metadata.issuer) throw new KeycardError("issuer_mismatch", "the response does not come from the issuer");
    const err = q.get("error");
    if (err) throw new KeycardError(err, q.get("error_description") ?? undefined);
    const code = q.get("code");
    if (!code) throw new KeycardError("invalid_response", "no code");
    const grant = await this.tokenRequest({
      grant_type: "authorization_code", code, redirect_uri: this.options.redirectUri, client_id: this.options.clientId, code_verifier: p.verifier,
    }, p.nonce);
    await this.session.signedIn(grant);
    return { returnTo: p.returnTo, claims: grant.tokens.claims };
  }

  /**
   * start is what a page calls when it loads: on the redirect URI with a
   * response it completes the sign-in (and puts returnTo in the address
   * bar), otherwise it takes the session's tokens from another tab or
   * renews them. It resolves to the user's ID token claims, or undefined
   * when not signed in.
   */
  async start(): Promise<IDTokenClaims | undefined> {
    if (this.isCallback()) {
      const { returnTo, claims } = await this.handleCallback();
      history.replaceState(null, "", returnTo);
      return claims;
    }
    const t = await this.session.start();
    return t?.claims;
  }

  /** user returns the signed-in user's ID token claims, or undefined. */
  user(): IDTokenClaims | undefined {
    return this.session.current()?.claims;
  }

  /** accessToken returns a valid access token, renewing it if needed. */
  async accessToken(): Promise<string> {
    return (await this.session.accessToken()).accessToken;
  }

  /**
   * fetch is window.fetch with the access token: `Authorization: DPoP …`
   * and a new proof (with `ath`, and the server's nonce), or `Bearer`
   * for an unbound token. A `use_dpop_nonce` answer is retried once with
   * the nonce; a 401 renews the token (once for all tabs) and retries
   * once.
   */
  async fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    const base = new Request(input, init);
    let tokens = await this.session.accessToken();
    let refreshed = false, nonceRetried = false;
    for (;;) {
      const headers = new Headers(base.headers);
      const origin = new URL(base.url).origin;
      const sent = this.nonces.get(origin);
      headers.set("Authorization", `${tokens.tokenType} ${tokens.accessToken}`);
      const bound = tokens.tokenType.toLowerCase() === "dpop";
      if (bound) {
        headers.set("DPoP", await dpop.proof(await this.dpopKey(), { method: base.method, url: base.url, accessToken: tokens.accessToken, nonce: sent }));
      }
      const res = await this.fetchImpl(new Request(base.clone(), { headers }));
      const nonce = res.headers.get("DPoP-Nonce");
      if (nonce) this.nonces.set(origin, nonce);
      if (res.status !== 401) return res;
      // use_dpop_nonce (RFC 9449 §8): retry once with the server's nonce.
      // Across origins WWW-Authenticate is often not exposed to scripts
      // while DPoP-Nonce is: a new nonce on a 401 is taken as the same
      // request.
      const challenge = res.headers.get("WWW-Authenticate") ?? "";
      if (bound && nonce && !nonceRetried && (/error="use_dpop_nonce"/.test(challenge) || nonce !== sent)) {
        nonceRetried = true;
        continue;
      }
      if (refreshed) return res;
      refreshed = true;
      try {
        tokens = await this.session.refresh(tokens);
      } catch {
        return res; // signed out: the app hears it as an event
      }
    }
  }

  /**
   * signOut ends the session in every tab, revokes the refresh token and
   * sends the browser to the end_session_endpoint (RP-initiated logout)
   * with the ID token as a hint, which ends the sign-in at Keycard, and
   * back to postLogoutRedirectUri. With { redirect: false } it stays on
   * the page (the sign-in at Keycard remains).
   */
  async signOut(opt: { redirect?: boolean } = {}): Promise<void> {
    const idToken = this.session.current()?.idToken;
    const rt = await this.session.refreshToken();
    await this.session.signOut();
    if (rt && this.metadata.revocation_endpoint) {
      try {
        await this.fetchImpl(this.metadata.revocation_endpoint, {
          method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({ token: rt, token_type_hint: "refresh_token", client_id: this.options.clientId }), keepalive: true,
        });
      } catch { /* the RP-initiated logout below ends the session anyway */ }
    }
    if (opt.redirect === false || !this.metadata.end_session_endpoint) return;
    const q = new URLSearchParams({ client_id: this.options.clientId });
    if (idToken) q.set("id_token_hint", idToken);
    if (this.options.postLogoutRedirectUri) q.set("post_logout_redirect_uri", this.options.postLogoutRedirectUri);
    location.assign(this.metadata.end_session_endpoint + "?" + q.toString());
  }

  /** close stops this tab's timers and channel. */
  close(): void {
    this.session.close();
  }

  private async jwks(force: boolean): Promise<JsonWebKey[]> {
    if (!this.keys || force) {
      const res = await this.fetchImpl(this.metadata.jwks_uri);
      if (!res.ok) throw new KeycardError("http_error", `jwks: ${res.status}`);
      const body = (await res.json()) as { keys?: JsonWebKey[] };
      if (!Array.isArray(body.keys)) throw new KeycardError("invalid_response", "jwks: no keys");
      this.keys = body.keys;
    }
    return this.keys;
  }

  private refreshGrant(refreshToken: string): Promise<Grant> {
    return this.tokenRequest({ grant_type: "refresh_token", refresh_token: refreshToken, client_id: this.options.clientId }, undefined);
  }

  /** tokenRequest posts a grant to the token endpoint with a DPoP proof (and the server's nonce when it asks for one). */
  private async tokenRequest(params: Record<string, string>, nonce: string | undefined): Promise<Grant> {
    const url = this.metadata.token_endpoint;
    const origin = new URL(url).origin;
    let body: Record<string, unknown> = {};
    let res: Response | undefined;
    for (let attempt = 0; attempt < 2; attempt++) {
      const proof = await dpop.proof(await this.dpopKey(), { method: "POST", url, nonce: this.nonces.get(origin) });
      // Bounded: the refresh runs under the lock every tab waits for.
      res = await this.fetchImpl(url, {
        method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded", DPoP: proof }, body: new URLSearchParams(params),
        signal: AbortSignal.timeout(tokenTimeoutMs),
      });
      const n = res.headers.get("DPoP-Nonce");
      if (n) this.nonces.set(origin, n);
      try { body = (await res.json()) as Record<string, unknown>; } catch { body = {}; }
      if (res.status === 400 && body.error === "use_dpop_nonce" && n && attempt === 0) continue;
      break;
    }
    if (!res!.ok) {
      throw new KeycardError(typeof body.error === "string" ? body.error : "http_error", typeof body.error_description === "string" ? body.error_description : `token endpoint: ${res!.status}`);
    }
    const at = body.access_token, type = body.token_type, exp = body.expires_in;
    if (typeof at !== "string" || typeof type !== "string" || typeof exp !== "number") throw new KeycardError("invalid_response", "token endpoint: no access_token, token_type or expires_in");
    const now = Date.now();
    const tokens: Tokens = { accessToken: at, tokenType: type, expiresAt: now + exp * 1000, lifetime: exp * 1000 };
    const previous = this.session.current()?.claims;
    if (typeof body.id_token === "string") {
      const verify = async (force: boolean) => verifyIDToken(body.id_token as string, {
        issuer: this.metadata.issuer, clientId: this.options.clientId, keys: await this.jwks(force), nonce, now: now / 1000, leeway: skewSeconds,
      });
      let claims: IDTokenClaims;
      try {
        claims = await verify(false);
      } catch (e) {
        if (!(e instanceof KeycardError) || !/no key/.test(e.message)) throw e;
        claims = await verify(true); // a key newer than our copy of the JWKS
      }
      if (nonce === undefined && previous && claims.sub !== previous.sub) throw new KeycardError("invalid_id_token", "a refresh answered for another user");
      tokens.idToken = body.id_token;
      tokens.claims = claims;
    } else if (nonce !== undefined && (this.options.scope ?? "openid profile").split(" ").includes("openid")) {
      throw new KeycardError("invalid_id_token", "no ID token in the answer to an openid sign-in");
    } else if (previous) {
      tokens.claims = previous;
      tokens.idToken = this.session.current()?.idToken;
    }
    return { tokens, refreshToken: typeof body.refresh_token === "string" ? body.refresh_token : undefined };
  }
}
