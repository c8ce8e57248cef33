import { KeycardError } from "./errors.js";
import type { IDTokenClaims } from "./idtoken.js";
import type { Store } from "./store.js";

/** Tokens are one tab's tokens, in memory only. */
export interface Tokens {
  accessToken: string;
  /** "DPoP" for a DPoP-bound token, otherwise "Bearer". */
  tokenType: string;
  /** When the access token expires, in milliseconds since the epoch. */
  expiresAt: number;
  /** The access token's lifetime as the server gave it (expires_in), in milliseconds. */
  lifetime: number;
  idToken?: string;
  claims?: IDTokenClaims;
}

/** Grant is the answer of a refresh: the new tokens and the rotated refresh token. */
export interface Grant {
  tokens: Tokens;
  refreshToken?: string;
}

/** SignedOutReason says why a session ended. */
export type SignedOutReason =
  /** This tab or another one signed out. */
  | "signed_out"
  /** The server refused the refresh token (invalid_grant): the session was ended at the server, by a sign-out elsewhere, an admin, theft detection, its lifetime … */
  | "invalid_grant"
  /** There was no refresh token to renew the access token with. */
  | "no_session";

/** Locks is the part of navigator.locks (Web Locks) the session uses. */
export interface Locks {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>;
}

/** Channel is the part of BroadcastChannel the session uses. */
export interface Channel {
  postMessage(message: unknown): void;
  onmessage: ((ev: MessageEvent) => void) | null;
  close(): void;
}

/** SessionDeps are the platform's parts, given so that tests can fake them. */
export interface SessionDeps {
  locks: Locks;
  channel: Channel;
  store: Store;
  /** The name of the Web Lock around refreshes: one per client. */
  lockName: string;
  /** refresh redeems a refresh token; a KeycardError invalid_grant means the session is over. */
  refresh(refreshToken: string): Promise<Grant>;
  /** How long a tab waits for another tab's tokens before refreshing itself, in ms. */
  peerWait: number;
  /** How long before expiry a token is renewed, in ms (at most half its lifetime). */
  margin: number;
  now(): number;
  setTimeout(f: () => void, ms: number): unknown;
  clearTimeout(h: unknown): void;
}

/** SavedRefresh is the stored refresh token with its generation, raised at each rotation. */
interface SavedRefresh {
  token: string;
  gen: number;
}

type Message =
  | { t: "tokens"; gen: number; tokens: Tokens }
  | { t: "ask" }
  | { t: "signed_out"; reason: SignedOutReason };

const refreshKey = "refresh";

/** Listener hears the session's events. */
export interface SessionEvents {
  tokens(t: Tokens): void;
  signedOut(reason: SignedOutReason): void;
}

/**
 * Session holds one tab's tokens and shares them with the other tabs of
 * the same client: a refresh runs under a Web Lock, one tab at a time,
 * and its result goes to every tab over a BroadcastChannel, so however
 * many tabs find the token expiring at once, the server sees one refresh
 * and every tab gets the new token. A tab that takes the lock after
 * another tab refreshed (the stored generation moved past its own) asks
 * the other tabs for the new tokens instead of refreshing again, and
 * refreshes only if nobody answers within peerWait (the refreshing tab
 * was closed). A session ended anywhere — sign-out in one tab, or a
 * refresh answered invalid_grant — ends in every tab.
 */
export class Session {
  private tokens: Tokens | undefined;
  private gen = 0;
  private timer: unknown;
  private inflight: Promise<Tokens> | undefined;
  private waiters: Array<() => void> = [];
  private closed = false;

  constructor(private deps: SessionDeps, private events: SessionEvents) {
    deps.channel.onmessage = (ev) => this.onMessage(ev.data as Message);
  }

  /** current returns this tab's tokens, if any, expired or not. */
  current(): Tokens | undefined {
    return this.tokens;
  }

  /** valid reports whether t is good for at least a few more seconds. */
  private valid(t: Tokens | undefined): t is Tokens {
    return t !== undefined && t.expiresAt - Math.min(5000, t.lifetime / 4) > this.deps.now();
  }

  private onMessage(m: Message): void {
    if (this.closed || typeof m !== "object" || m === null) return;
    switch (m.t) {
      case "tokens":
        if (m.gen >= this.gen && m.tokens !== undefined && (this.tokens === undefined || m.gen > this.gen || m.tokens.expiresAt > this.tokens.expiresAt)) {
          this.set(m.tokens, m.gen, false);
        }
        break;
      case "ask":
        if (this.valid(this.tokens)) this.deps.channel.postMessage({ t: "tokens", gen: this.gen, tokens: this.tokens } satisfies Message);
        break;
      case "signed_out":
        this.end(m.reason, false);
        break;
    }
  }

  private set(t: Tokens, gen: number, broadcast: boolean): void {
    this.tokens = t;
    this.gen = gen;
    this.schedule();
    if (broadcast) this.deps.channel.postMessage({ t: "tokens", gen, tokens: t } satisfies Message);
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
    this.events.tokens(t);
  }

  private schedule(): void {
    if (this.timer !== undefined) this.deps.clearTimeout(this.timer);
    this.timer = undefined;
    const t = this.tokens;
    if (!t || this.closed) return;
    // At least a second apart, whatever the server says: no busy loop.
    const delay = Math.max(1000, t.expiresAt - Math.min(this.deps.margin, t.lifetime / 2) - this.deps.now());
    this.timer = this.deps.setTimeout(() => {
      this.timer = undefined;
      this.refresh(t).catch(() => {}); // failures reach the app as events
    }, delay);
  }

  /** waitForPeer resolves true when another tab hands over tokens within ms, false otherwise. */
  private waitForPeer(ms: number, accept: () => boolean): Promise<boolean> {
    return new Promise((resolve) => {
      let done = false;
      const h = this.deps.setTimeout(() => {
        if (!done) { done = true; resolve(accept()); }
      }, ms);
      const check = () => {
        if (done) return;
        if (accept()) { done = true; this.deps.clearTimeout(h); resolve(true); } else this.waiters.push(check);
      };
      this.waiters.push(check);
      this.deps.channel.postMessage({ t: "ask" } satisfies Message);
    });
  }

  /**
   * start gets this tab going: tokens from another tab if one answers
   * within peerWait, else a refresh with the stored refresh token. It
   * resolves to the tokens, or undefined when there is no session.
   */
  async start(): Promise<Tokens | undefined> {
    const saved = await this.deps.store.get<SavedRefresh>(refreshKey);
    if (!saved) return undefined;
    if (await this.waitForPeer(this.deps.peerWait, () => this.valid(this.tokens))) return this.tokens;
    try {
      return await this.refresh(undefined);
    } catch (e) {
      if (e instanceof KeycardError && (e.code === "invalid_grant" || e.code === "no_session")) return undefined;
      throw e;
    }
  }

  /** accessToken returns valid tokens: this tab's, another tab's, or new ones from a refresh. */
  async accessToken(): Promise<Tokens> {
    if (this.valid(this.tokens)) return this.tokens;
    return this.refresh(this.tokens);
  }

  /**
   * refresh renews stale (the tokens the caller found wanting; undefined
   * for none), once for all tabs. If by the time this tab holds the lock
   * its tokens are no longer stale — another tab's arrived — those are
   * the answer.
   */
  refresh(stale: Tokens | undefined): Promise<Tokens> {
    if (this.inflight) return this.inflight;
    const p = this.deps.locks.request(this.deps.lockName, () => this.refreshLocked(stale));
    this.inflight = p;
    const clear = () => { if (this.inflight === p) this.inflight = undefined; };
    p.then(clear, clear);
    return p;
  }

  private async refreshLocked(stale: Tokens | undefined): Promise<Tokens> {
    if (this.closed) throw new KeycardError("no_session", "the client is closed");
    if (this.tokens !== undefined && this.tokens !== stale && this.valid(this.tokens)) return this.tokens;
    let saved = await this.deps.store.get<SavedRefresh>(refreshKey);
    // Another tab's tokens may have arrived while the store was read: its
    // broadcast moved this.gen up to the stored generation, so the check
    // below would not see that a refresh happened.
    if (this.tokens !== undefined && this.tokens !== stale && this.valid(this.tokens)) return this.tokens;
    if (saved && saved.gen > this.gen) {
      // Another tab refreshed after our tokens were made: its tokens are
      // on the way, or any tab has them.
      const want = saved.gen;
      if (await this.waitForPeer(this.deps.peerWait, () => this.gen >= want && this.valid(this.tokens))) return this.tokens!;
      saved = await this.deps.store.get<SavedRefresh>(refreshKey);
    }
    if (!saved) {
      this.end("no_session", true);
      throw new KeycardError("no_session", "no refresh token");
    }
    let grant: Grant;
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
    if (grant.refreshToken) await this.deps.store.put(refreshKey, { token: grant.refreshToken, gen } satisfies SavedRefresh);
    else await this.deps.store.delete(refreshKey); // used up: the next renewal needs a sign-in
    this.set(grant.tokens, gen, true);
    return grant.tokens;
  }

  /**
   * signedIn records the tokens of a sign-in (the code grant) and hands
   * them to every tab. It runs under the lock, so that no refresh of the
   * previous session's token runs at the same time.
   */
  async signedIn(g: Grant): Promise<void> {
    await this.deps.locks.request(this.deps.lockName, async () => {
      const saved = await this.deps.store.get<SavedRefresh>(refreshKey);
      const gen = Math.max(saved?.gen ?? 0, this.gen) + 1;
      if (g.refreshToken) await this.deps.store.put(refreshKey, { token: g.refreshToken, gen } satisfies SavedRefresh);
      else await this.deps.store.delete(refreshKey);
      this.set(g.tokens, gen, true);
    });
  }

  /** refreshToken returns the stored refresh token, for revocation at sign-out. */
  async refreshToken(): Promise<string | undefined> {
    return (await this.deps.store.get<SavedRefresh>(refreshKey))?.token;
  }

  /** signOut forgets the session in every tab: its tokens, the stored refresh token. */
  async signOut(): Promise<void> {
    await this.deps.store.delete(refreshKey);
    this.end("signed_out", true);
  }

  private end(reason: SignedOutReason, broadcast: boolean): void {
    const had = this.tokens !== undefined;
    this.tokens = undefined;
    this.gen = 0;
    if (this.timer !== undefined) this.deps.clearTimeout(this.timer);
    this.timer = undefined;
    if (broadcast) this.deps.channel.postMessage({ t: "signed_out", reason } satisfies Message);
    if (had || broadcast) this.events.signedOut(reason);
  }

  /** close stops the timer and the channel. */
  close(): void {
    this.closed = true;
    if (this.timer !== undefined) this.deps.clearTimeout(this.timer);
    this.deps.channel.onmessage = null;
    this.deps.channel.close();
  }
}
