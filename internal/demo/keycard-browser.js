// src/base64url.ts
function encode(data) {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data instanceof Uint8Array ? data : new Uint8Array(data);
  let bin = "";
  for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
function decode(s) {
  if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) throw new Error("not base64url");
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice(0, (4 - s.length % 4) % 4);
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
function random(n = 32) {
  return encode(crypto.getRandomValues(new Uint8Array(n)));
}

// src/dpop.ts
async function generateKey() {
  return crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
}
async function publicJwk(pair) {
  const jwk = await crypto.subtle.exportKey("jwk", pair.publicKey);
  if (jwk.kty !== "EC" || jwk.crv !== "P-256" || !jwk.x || !jwk.y) throw new Error("keycard: the DPoP key is not P-256");
  return { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y };
}
async function thumbprint(jwk) {
  const canonical = `{"crv":${JSON.stringify(jwk.crv)},"kty":${JSON.stringify(jwk.kty)},"x":${JSON.stringify(jwk.x)},"y":${JSON.stringify(jwk.y)}}`;
  return encode(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonical)));
}
function htu(url) {
  const u = new URL(url);
  return u.origin + u.pathname;
}
async function ath(accessToken) {
  return encode(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(accessToken)));
}
async function proof(pair, opt) {
  const header = { typ: "dpop+jwt", alg: "ES256", jwk: await publicJwk(pair) };
  const claims = {
    jti: random(16),
    htm: opt.method.toUpperCase(),
    htu: htu(opt.url),
    iat: Math.floor(opt.now ?? Date.now() / 1e3)
  };
  if (opt.accessToken !== void 0) claims.ath = await ath(opt.accessToken);
  if (opt.nonce !== void 0) claims.nonce = opt.nonce;
  const input = encode(JSON.stringify(header)) + "." + encode(JSON.stringify(claims));
  const sig = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, pair.privateKey, new TextEncoder().encode(input));
  return input + "." + encode(sig);
}

// src/errors.ts
var KeycardError = class extends Error {
  code;
  constructor(code, message) {
    super(message ? `keycard: ${code}: ${message}` : `keycard: ${code}`);
    this.name = "KeycardError";
    this.code = code;
  }
};

// src/idtoken.ts
var algs = {
  ES256: { import: { name: "ECDSA", namedCurve: "P-256" }, verify: { name: "ECDSA", hash: "SHA-256" }, kty: "EC", crv: "P-256" },
  ES384: { import: { name: "ECDSA", namedCurve: "P-384" }, verify: { name: "ECDSA", hash: "SHA-384" }, kty: "EC", crv: "P-384" },
  ES512: { import: { name: "ECDSA", namedCurve: "P-521" }, verify: { name: "ECDSA", hash: "SHA-512" }, kty: "EC", crv: "P-521" },
  RS256: { import: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, verify: { name: "RSASSA-PKCS1-v1_5" }, kty: "RSA" },
  RS384: { import: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-384" }, verify: { name: "RSASSA-PKCS1-v1_5" }, kty: "RSA" },
  RS512: { import: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-512" }, verify: { name: "RSASSA-PKCS1-v1_5" }, kty: "RSA" },
  PS256: { import: { name: "RSA-PSS", hash: "SHA-256" }, verify: { name: "RSA-PSS", saltLength: 32 }, kty: "RSA" },
  PS384: { import: { name: "RSA-PSS", hash: "SHA-384" }, verify: { name: "RSA-PSS", saltLength: 48 }, kty: "RSA" },
  PS512: { import: { name: "RSA-PSS", hash: "SHA-512" }, verify: { name: "RSA-PSS", saltLength: 64 }, kty: "RSA" },
  EdDSA: { import: { name: "Ed25519" }, verify: { name: "Ed25519" }, kty: "OKP", crv: "Ed25519" }
};
function bad(msg) {
  return new KeycardError("invalid_id_token", msg);
}
function decodeJWT(token) {
  const parts = token.split(".");
  if (parts.length !== 3) throw bad("not a compact JWS");
  let header, payload, signature;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(decode(parts[0])));
    payload = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(decode(parts[1])));
    signature = decode(parts[2]);
  } catch {
    throw bad("malformed");
  }
  if (!isObject(header) || !isObject(payload)) throw bad("malformed");
  return { header, payload, signingInput: new TextEncoder().encode(parts[0] + "." + parts[1]), signature };
}
function isObject(v) {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
async function verifyIDToken(token, opt) {
  const { header, payload, signingInput, signature } = decodeJWT(token);
  const alg = typeof header.alg === "string" ? algs[header.alg] : void 0;
  if (!alg) throw bad(`algorithm ${String(header.alg)} not accepted`);
  if (header.crit !== void 0) throw bad("crit not supported");
  const candidates = opt.keys.filter(
    (k) => k.kty === alg.kty && (alg.crv === void 0 || k.crv === alg.crv) && (k.use === void 0 || k.use === "sig") && (header.kid === void 0 || k.kid === header.kid) && (k.alg === void 0 || k.alg === header.alg)
  );
  if (candidates.length === 0) throw bad("no key of the issuer matches the token's kid and alg");
  let ok = false;
  for (const jwk of candidates) {
    const pub = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, n: jwk.n, e: jwk.e };
    let key;
    try {
      key = await crypto.subtle.importKey("jwk", pub, alg.import, false, ["verify"]);
    } catch {
      continue;
    }
    if (await crypto.subtle.verify(alg.verify, key, signature, signingInput)) {
      ok = true;
      break;
    }
  }
  if (!ok) throw bad("signature does not verify");
  return checkClaims(payload, opt);
}
function checkClaims(p, opt) {
  const leeway = opt.leeway ?? 60;
  if (p.iss !== opt.issuer) throw bad("iss is not the issuer");
  if (typeof p.sub !== "string" || p.sub === "") throw bad("no sub");
  const aud = typeof p.aud === "string" ? [p.aud] : Array.isArray(p.aud) && p.aud.every((a) => typeof a === "string") ? p.aud : void 0;
  if (!aud || !aud.includes(opt.clientId)) throw bad("aud does not name this client");
  if ((aud.length > 1 || p.azp !== void 0) && p.azp !== opt.clientId) throw bad("azp is not this client");
  if (typeof p.exp !== "number" || p.exp + leeway <= opt.now) throw bad("expired");
  if (typeof p.iat !== "number" || p.iat - leeway > opt.now) throw bad("iat missing or in the future");
  if (opt.nonce !== void 0 && p.nonce !== opt.nonce) throw bad("nonce is not the one sent");
  return p;
}

// src/pkce.ts
function newVerifier() {
  return random(32);
}
async function challenge(verifier) {
  if (!/^[A-Za-z0-9._~-]{43,128}$/.test(verifier)) throw new Error("keycard: a PKCE verifier is 43 to 128 unreserved characters");
  return encode(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
}

// src/session.ts
var refreshKey = "refresh";
var Session = class {
  constructor(deps, events) {
    this.deps = deps;
    this.events = events;
    deps.channel.onmessage = (ev) => this.onMessage(ev.data);
  }
  deps;
  events;
  tokens;
  gen = 0;
  timer;
  inflight;
  waiters = [];
  closed = false;
  /** current returns this tab's tokens, if any, expired or not. */
  current() {
    return this.tokens;
  }
  /** valid reports whether t is good for at least a few more seconds. */
  valid(t) {
    return t !== void 0 && t.expiresAt - Math.min(5e3, t.lifetime / 4) > this.deps.now();
  }
  onMessage(m) {
    if (this.closed || typeof m !== "object" || m === null) return;
    switch (m.t) {
      case "tokens":
        if (m.gen >= this.gen && m.tokens !== void 0 && (this.tokens === void 0 || m.gen > this.gen || m.tokens.expiresAt > this.tokens.expiresAt)) {
          this.set(m.tokens, m.gen, false);
        }
        break;
      case "ask":
        if (this.valid(this.tokens)) this.deps.channel.postMessage({ t: "tokens", gen: this.gen, tokens: this.tokens });
        break;
      case "signed_out":
        this.end(m.reason, false);
        break;
    }
  }
  set(t, gen, broadcast) {
    this.tokens = t;
    this.gen = gen;
    this.schedule();
    if (broadcast) this.deps.channel.postMessage({ t: "tokens", gen, tokens: t });
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
    this.events.tokens(t);
  }
  schedule() {
    if (this.timer !== void 0) this.deps.clearTimeout(this.timer);
    this.timer = void 0;
    const t = this.tokens;
    if (!t || this.closed) return;
    const delay = Math.max(1e3, t.expiresAt - Math.min(this.deps.margin, t.lifetime / 2) - this.deps.now());
    this.timer = this.deps.setTimeout(() => {
      this.timer = void 0;
      this.refresh(t).catch(() => {
      });
    }, delay);
  }
  /** waitForPeer resolves true when another tab hands over tokens within ms, false otherwise. */
  waitForPeer(ms, accept) {
    return new Promise((resolve) => {
      let done = false;
      const h = this.deps.setTimeout(() => {
        if (!done) {
          done = true;
          resolve(accept());
        }
      }, ms);
      const check = () => {
        if (done) return;
        if (accept()) {
          done = true;
          this.deps.clearTimeout(h);
          resolve(true);
        } else this.waiters.push(check);
      };
      this.waiters.push(check);
      this.deps.channel.postMessage({ t: "ask" });
    });
  }
  /**
   * start gets this tab going: tokens from another tab if one answers
   * within peerWait, else a refresh with the stored refresh token. It
   * resolves to the tokens, or undefined when there is no session.
   */
  async start() {
    const saved = await this.deps.store.get(refreshKey);
    if (!saved) return void 0;
    if (await this.waitForPeer(this.deps.peerWait, () => this.valid(this.tokens))) return this.tokens;
    try {
      return await this.refresh(void 0);
    } catch (e) {
      if (e instanceof KeycardError && (e.code === "invalid_grant" || e.code === "no_session")) return void 0;
      throw e;
    }
  }
  /** accessToken returns valid tokens: this tab's, another tab's, or new ones from a refresh. */
  async accessToken() {
    if (this.valid(this.tokens)) return this.tokens;
    return this.refresh(this.tokens);
  }
  /**
   * refresh renews stale (the tokens the caller found wanting; undefined
   * for none), once for all tabs. If by the time this tab holds the lock
   * its tokens are no longer stale — another tab's arrived — those are
   * the answer.
   */
  refresh(stale) {
    if (this.inflight) return this.inflight;
    const p = this.deps.locks.request(this.deps.lockName, () => this.refreshLocked(stale));
    this.inflight = p;
    const clear = () => {
      if (this.inflight === p) this.inflight = void 0;
    };
    p.then(clear, clear);
    return p;
  }
  async refreshLocked(stale) {
    if (this.closed) throw new KeycardError("no_session", "the client is closed");
    if (this.tokens !== void 0 && this.tokens !== stale && this.valid(this.tokens)) return this.tokens;
    let saved = await this.deps.store.get(refreshKey);
    if (this.tokens !== void 0 && this.tokens !== stale && this.valid(this.tokens)) return this.tokens;
    if (saved && saved.gen > this.gen) {
      const want = saved.gen;
      if (await this.waitForPeer(this.deps.peerWait, () => this.gen >= want && this.valid(this.tokens))) return this.tokens;
      saved = await this.deps.store.get(refreshKey);
    }
    if (!saved) {
      this.end("no_session", true);
      throw new KeycardError("no_session", "no refresh token");
    }
    let grant;
    try {
      grant = await this.deps.refresh(saved.token);
    } catch (e) {
      if (e instanceof KeycardError && e.code === "invalid_grant") {
        await this.deps.store.delete(refreshKey);
        this.end("invalid_grant", true);
      }
      throw e;
    }
    const gen = saved.gen + 1;
    if (grant.refreshToken) await this.deps.store.put(refreshKey, { token: grant.refreshToken, gen });
    else await this.deps.store.delete(refreshKey);
    this.set(grant.tokens, gen, true);
    return grant.tokens;
  }
  /**
   * signedIn records the tokens of a sign-in (the code grant) and hands
   * them to every tab. It runs under the lock, so that no refresh of the
   * previous session's token runs at the same time.
   */
  async signedIn(g) {
    await this.deps.locks.request(this.deps.lockName, async () => {
      const saved = await this.deps.store.get(refreshKey);
      const gen = Math.max(saved?.gen ?? 0, this.gen) + 1;
      if (g.refreshToken) await this.deps.store.put(refreshKey, { token: g.refreshToken, gen });
      else await this.deps.store.delete(refreshKey);
      this.set(g.tokens, gen, true);
    });
  }
  /** refreshToken returns the stored refresh token, for revocation at sign-out. */
  async refreshToken() {
    return (await this.deps.store.get(refreshKey))?.token;
  }
  /** signOut forgets the session in every tab: its tokens, the stored refresh token. */
  async signOut() {
    await this.deps.store.delete(refreshKey);
    this.end("signed_out", true);
  }
  end(reason, broadcast) {
    const had = this.tokens !== void 0;
    this.tokens = void 0;
    this.gen = 0;
    if (this.timer !== void 0) this.deps.clearTimeout(this.timer);
    this.timer = void 0;
    if (broadcast) this.deps.channel.postMessage({ t: "signed_out", reason });
    if (had || broadcast) this.events.signedOut(reason);
  }
  /** close stops the timer and the channel. */
  close() {
    this.closed = true;
    if (this.timer !== void 0) this.deps.clearTimeout(this.timer);
    this.deps.channel.onmessage = null;
    this.deps.channel.close();
  }
};

// src/store.ts
var IndexedDBStore = class {
  db;
  constructor(name = "keycard") {
    this.db = new Promise((resolve, reject) => {
      const req = indexedDB.open(name, 1);
      req.onupgradeneeded = () => req.result.createObjectStore("state");
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }
  async run(mode, f) {
    const db = await this.db;
    return new Promise((resolve, reject) => {
      const tx = db.transaction("state", mode);
      const req = f(tx.objectStore("state"));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  }
  get(key) {
    return this.run("readonly", (s) => s.get(key));
  }
  async put(key, value) {
    await this.run("readwrite", (s) => s.put(value, key));
  }
  async delete(key) {
    await this.run("readwrite", (s) => s.delete(key));
  }
};
var MemoryStore = class {
  m = /* @__PURE__ */ new Map();
  async get(key) {
    return this.m.get(key);
  }
  async put(key, value) {
    this.m.set(key, value);
  }
  async delete(key) {
    this.m.delete(key);
  }
};

// src/client.ts
var skewSeconds = 60;
var tokenTimeoutMs = 3e4;
var KeycardClient = class _KeycardClient {
  constructor(options, metadata) {
    this.options = options;
    this.metadata = metadata;
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    const lockName = `keycard:${options.issuer}:${options.clientId}`;
    this.store = options.store ?? new IndexedDBStore(lockName);
    this.session = new Session(
      {
        locks: options.locks ?? navigator.locks,
        channel: options.channel ?? new BroadcastChannel(lockName),
        store: this.store,
        lockName,
        refresh: (rt) => this.refreshGrant(rt),
        peerWait: options.peerWait ?? 1e3,
        margin: (options.refreshMargin ?? 60) * 1e3,
        now: () => Date.now(),
        setTimeout: (f, ms) => setTimeout(f, ms),
        clearTimeout: (h) => clearTimeout(h)
      },
      {
        tokens: (t) => this.emit("tokens", { claims: t.claims, expiresAt: t.expiresAt }),
        signedOut: (reason) => this.emit("signedout", { reason })
      }
    );
  }
  options;
  metadata;
  session;
  listeners = { tokens: /* @__PURE__ */ new Set(), signedout: /* @__PURE__ */ new Set() };
  keyPair;
  nonces = /* @__PURE__ */ new Map();
  keys;
  fetchImpl;
  store;
  /** create reads the issuer's discovery document and returns a client. */
  static async create(options) {
    if (!globalThis.crypto?.subtle || !options.locks && !globalThis.navigator?.locks) {
      throw new KeycardError("unsupported", "WebCrypto and Web Locks are needed: serve the page over https (or from localhost)");
    }
    const f = options.fetch ?? globalThis.fetch.bind(globalThis);
    const res = await f(options.issuer.replace(/\/$/, "") + "/.well-known/openid-configuration");
    if (!res.ok) throw new KeycardError("http_error", `discovery: ${res.status}`);
    const m = await res.json();
    if (m.issuer !== options.issuer.replace(/\/$/, "")) throw new KeycardError("issuer_mismatch", "the discovery document names another issuer");
    for (const k of ["authorization_endpoint", "token_endpoint", "jwks_uri"]) {
      if (typeof m[k] !== "string") throw new KeycardError("invalid_response", `discovery: no ${k}`);
    }
    return new _KeycardClient(options, m);
  }
  /** on subscribes to an event and returns the function that unsubscribes. */
  on(event, f) {
    this.listeners[event].add(f);
    return () => this.listeners[event].delete(f);
  }
  emit(event, e) {
    for (const f of this.listeners[event]) {
      try {
        f(e);
      } catch (err) {
        console.error(err);
      }
    }
  }
  pendingKey() {
    return `keycard:${this.options.clientId}:pending`;
  }
  dpopKey() {
    if (!this.keyPair) {
      const name = `dpop:${this.options.clientId}`;
      this.keyPair = (async () => {
        const saved = await this.store.get(name);
        if (saved) return saved;
        const made = await generateKey();
        await this.store.put(name, made);
        return made;
      })();
      this.keyPair.catch(() => {
        this.keyPair = void 0;
      });
    }
    return this.keyPair;
  }
  /**
   * signIn sends the browser to the authorization endpoint: code flow,
   * PKCE S256, a new state and nonce (kept in sessionStorage until the
   * callback), and dpop_jkt, which binds the code to this browser's DPoP
   * key. It does not return.
   */
  async signIn(opt = {}) {
    const p = { state: random(16), nonce: random(16), verifier: newVerifier(), returnTo: opt.returnTo ?? location.pathname + location.search + location.hash };
    const jkt = await thumbprint(await publicJwk(await this.dpopKey()));
    sessionStorage.setItem(this.pendingKey(), JSON.stringify(p));
    const q = new URLSearchParams({
      response_type: "code",
      client_id: this.options.clientId,
      redirect_uri: this.options.redirectUri,
      scope: this.options.scope ?? "openid profile",
      state: p.state,
      nonce: p.nonce,
      code_challenge: await challenge(p.verifier),
      code_challenge_method: "S256",
      dpop_jkt: jkt
    });
    if (opt.prompt) q.set("prompt", opt.prompt);
    if (opt.loginHint) q.set("login_hint", opt.loginHint);
    location.assign(this.metadata.authorization_endpoint + "?" + q.toString());
    return new Promise(() => {
    });
  }
  /** isCallback reports whether url is the redirect URI with an authorization response. */
  isCallback(url = location.href) {
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
  async handleCallback(url = location.href) {
    const q = new URL(url).searchParams;
    const raw = sessionStorage.getItem(this.pendingKey());
    sessionStorage.removeItem(this.pendingKey());
    let p;
    try {
      p = raw ? JSON.parse(raw) : void 0;
    } catch {
      p = void 0;
    }
    if (!p || q.get("state") !== p.state) throw new KeycardError("state_mismatch", "the response is not for a sign-in this browser started");
    if (q.get("iss") !== this.metadata.issuer) throw new KeycardError("issuer_mismatch", "the response does not come from the issuer");
    const err = q.get("error");
    if (err) throw new KeycardError(err, q.get("error_description") ?? void 0);
    const code = q.get("code");
    if (!code) throw new KeycardError("invalid_response", "no code");
    const grant = await this.tokenRequest({
      grant_type: "authorization_code",
      code,
      redirect_uri: this.options.redirectUri,
      client_id: this.options.clientId,
      code_verifier: p.verifier
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
  async start() {
    if (this.isCallback()) {
      const { returnTo, claims } = await this.handleCallback();
      history.replaceState(null, "", returnTo);
      return claims;
    }
    const t = await this.session.start();
    return t?.claims;
  }
  /** user returns the signed-in user's ID token claims, or undefined. */
  user() {
    return this.session.current()?.claims;
  }
  /** accessToken returns a valid access token, renewing it if needed. */
  async accessToken() {
    return (await this.session.accessToken()).accessToken;
  }
  /**
   * fetch is window.fetch with the access token: `Authorization: DPoP …`
   * and a new proof (with `ath`, and the server's nonce), or `Bearer`
   * for an unbound token. A `use_dpop_nonce` answer is retried once with
   * the nonce; a 401 renews the token (once for all tabs) and retries
   * once.
   */
  async fetch(input, init) {
    const base = new Request(input, init);
    let tokens = await this.session.accessToken();
    let refreshed = false, nonceRetried = false;
    for (; ; ) {
      const headers = new Headers(base.headers);
      const origin = new URL(base.url).origin;
      const sent = this.nonces.get(origin);
      headers.set("Authorization", `${tokens.tokenType} ${tokens.accessToken}`);
      const bound = tokens.tokenType.toLowerCase() === "dpop";
      if (bound) {
        headers.set("DPoP", await proof(await this.dpopKey(), { method: base.method, url: base.url, accessToken: tokens.accessToken, nonce: sent }));
      }
      const res = await this.fetchImpl(new Request(base.clone(), { headers }));
      const nonce = res.headers.get("DPoP-Nonce");
      if (nonce) this.nonces.set(origin, nonce);
      if (res.status !== 401) return res;
      const challenge2 = res.headers.get("WWW-Authenticate") ?? "";
      if (bound && nonce && !nonceRetried && (/error="use_dpop_nonce"/.test(challenge2) || nonce !== sent)) {
        nonceRetried = true;
        continue;
      }
      if (refreshed) return res;
      refreshed = true;
      try {
        tokens = await this.session.refresh(tokens);
      } catch {
        return res;
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
  async signOut(opt = {}) {
    const idToken = this.session.current()?.idToken;
    const rt = await this.session.refreshToken();
    await this.session.signOut();
    if (rt && this.metadata.revocation_endpoint) {
      try {
        await this.fetchImpl(this.metadata.revocation_endpoint, {
          method: "POST",
          headers: { "Content-Type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({ token: rt, token_type_hint: "refresh_token", client_id: this.options.clientId }),
          keepalive: true
        });
      } catch {
      }
    }
    if (opt.redirect === false || !this.metadata.end_session_endpoint) return;
    const q = new URLSearchParams({ client_id: this.options.clientId });
    if (idToken) q.set("id_token_hint", idToken);
    if (this.options.postLogoutRedirectUri) q.set("post_logout_redirect_uri", this.options.postLogoutRedirectUri);
    location.assign(this.metadata.end_session_endpoint + "?" + q.toString());
  }
  /** close stops this tab's timers and channel. */
  close() {
    this.session.close();
  }
  async jwks(force) {
    if (!this.keys || force) {
      const res = await this.fetchImpl(this.metadata.jwks_uri);
      if (!res.ok) throw new KeycardError("http_error", `jwks: ${res.status}`);
      const body = await res.json();
      if (!Array.isArray(body.keys)) throw new KeycardError("invalid_response", "jwks: no keys");
      this.keys = body.keys;
    }
    return this.keys;
  }
  refreshGrant(refreshToken) {
    return this.tokenRequest({ grant_type: "refresh_token", refresh_token: refreshToken, client_id: this.options.clientId }, void 0);
  }
  /** tokenRequest posts a grant to the token endpoint with a DPoP proof (and the server's nonce when it asks for one). */
  async tokenRequest(params, nonce) {
    const url = this.metadata.token_endpoint;
    const origin = new URL(url).origin;
    let body = {};
    let res;
    for (let attempt = 0; attempt < 2; attempt++) {
      const proof2 = await proof(await this.dpopKey(), { method: "POST", url, nonce: this.nonces.get(origin) });
      res = await this.fetchImpl(url, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded", DPoP: proof2 },
        body: new URLSearchParams(params),
        signal: AbortSignal.timeout(tokenTimeoutMs)
      });
      const n = res.headers.get("DPoP-Nonce");
      if (n) this.nonces.set(origin, n);
      try {
        body = await res.json();
      } catch {
        body = {};
      }
      if (res.status === 400 && body.error === "use_dpop_nonce" && n && attempt === 0) continue;
      break;
    }
    if (!res.ok) {
      throw new KeycardError(typeof body.error === "string" ? body.error : "http_error", typeof body.error_description === "string" ? body.error_description : `token endpoint: ${res.status}`);
    }
    const at = body.access_token, type = body.token_type, exp = body.expires_in;
    if (typeof at !== "string" || typeof type !== "string" || typeof exp !== "number") throw new KeycardError("invalid_response", "token endpoint: no access_token, token_type or expires_in");
    const now = Date.now();
    const tokens = { accessToken: at, tokenType: type, expiresAt: now + exp * 1e3, lifetime: exp * 1e3 };
    const previous = this.session.current()?.claims;
    if (typeof body.id_token === "string") {
      const verify = async (force) => verifyIDToken(body.id_token, {
        issuer: this.metadata.issuer,
        clientId: this.options.clientId,
        keys: await this.jwks(force),
        nonce,
        now: now / 1e3,
        leeway: skewSeconds
      });
      let claims;
      try {
        claims = await verify(false);
      } catch (e) {
        if (!(e instanceof KeycardError) || !/no key/.test(e.message)) throw e;
        claims = await verify(true);
      }
      if (nonce === void 0 && previous && claims.sub !== previous.sub) throw new KeycardError("invalid_id_token", "a refresh answered for another user");
      tokens.idToken = body.id_token;
      tokens.claims = claims;
    } else if (nonce !== void 0 && (this.options.scope ?? "openid profile").split(" ").includes("openid")) {
      throw new KeycardError("invalid_id_token", "no ID token in the answer to an openid sign-in");
    } else if (previous) {
      tokens.claims = previous;
      tokens.idToken = this.session.current()?.idToken;
    }
    return { tokens, refreshToken: typeof body.refresh_token === "string" ? body.refresh_token : void 0 };
  }
};
export {
  IndexedDBStore,
  KeycardClient,
  KeycardError,
  MemoryStore
};
