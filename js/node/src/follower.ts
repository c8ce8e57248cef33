import { StatusError, isJSON, readLimited } from "./http.js";
import type { Logger } from "./keyset.js";
import { RevocationSet, type Entry } from "./revocation.js";

export const MODE_STREAM = "stream";
export const MODE_LONG_POLL = "long-poll";

/** How long the feed may be unreachable before the follower is stale: 2 minutes. */
export const DEFAULT_MAX_OUTAGE_MS = 120_000;

// The Go follower's limits and intervals.
const FEED_PAGE_SIZE = 1000;
const MAX_PAGE_BYTES = 8 << 20;
const LONG_POLL_WAIT_S = 30;
const REQUEST_TIMEOUT_MS = 15_000;
const STREAM_IDLE_MS = 45_000;
const STREAM_RETRY_AFTER_MS = 5 * 60_000;
const STREAM_ATTEMPTS = 3;
const PRUNE_INTERVAL_MS = 30_000;
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 10_000;
const MAX_SSE_LINE = 64 << 10;
const MAX_SSE_EVENT = 64 << 10;

export interface FollowerOptions {
  /** GET …/v1/revocations: bootstrap and long-poll. Required. */
  feedUrl: string;
  /** GET …/v1/revocations/stream (server-sent events); empty: long-poll only. */
  streamUrl?: string;
  /** The service client's credentials, sent with HTTP Basic; the secret is never logged. */
  clientId: string;
  clientSecret: string;
  /** How long the feed may go without answering before the follower is stale (default 2 minutes). */
  maxOutageMs?: number;
  /** Keep accepting tokens while stale; by default the verifier fails closed. */
  failOpen?: boolean;
  /** Called with the kid of each signing key the feed revokes while it is followed. */
  onKeyRevoked?: (kid: string) => void;
  logger?: Logger;
  now?: () => number;
  /** Test hooks: shorter waits. */
  pollWaitSeconds?: number;
  streamIdleMs?: number;
}

/** The follower's connection to the feed. */
export interface FollowerStatus {
  ready: boolean;
  mode: string;
  cursor: number;
  lastContact: number | undefined;
  stale: boolean;
  reconnects: number;
  entries: number;
  skipped: number;
  lastError: string;
}

interface FeedPage {
  entries: Entry[];
  next: number;
  snapshot: boolean;
}

class StreamUnavailable extends Error {}
class Malformed extends Error {}

/**
 * Follower keeps a RevocationSet up to date from the auth server's
 * revocation feed, as the Go verifier's Follower does: it bootstraps from
 * the feed's pages, follows the server-sent event stream (resuming with
 * Last-Event-ID), falls back to long-polls when the stream is not served
 * (404, 405, 406, 410, 501, another Content-Type, or three streams in a
 * row that delivered nothing) and tries the stream again five minutes
 * later. Reconnects back off from 100 ms to 10 s with jitter. Expired
 * entries are pruned every 30 s.
 *
 * healthy() is what a verifier asks on every request: bootstrapped, and
 * in contact with the feed within maxOutage (or failOpen).
 */
export class Follower {
  readonly set: RevocationSet;
  private readonly opt: FollowerOptions;
  private readonly now: () => number;
  private readonly maxOutage: number;
  private readonly auth: string;
  private ready = false;
  private stopped = false;
  private streaming: boolean;
  private cursor = 0;
  private lastContact = 0;
  private reconnects = 0;
  private lastError = "";
  private abort = new AbortController();
  private loop: Promise<void> | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private backoff = 0;

  constructor(set: RevocationSet, opt: FollowerOptions) {
    this.set = set;
    this.opt = opt;
    this.now = opt.now ?? Date.now;
    this.maxOutage = opt.maxOutageMs && opt.maxOutageMs > 0 ? opt.maxOutageMs : DEFAULT_MAX_OUTAGE_MS;
    this.streaming = !!opt.streamUrl;
    // RFC 6749 section 2.3.1: both form-urlencoded before Basic encoding.
    const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, "+");
    this.auth = "Basic " + Buffer.from(enc(opt.clientId) + ":" + enc(opt.clientSecret)).toString("base64");
  }

  /**
   * start bootstraps the set from the feed, then follows it in the
   * background until close. It resolves with the bootstrap's error, or
   * undefined; the follower keeps trying in the background either way.
   */
  async start(): Promise<Error | undefined> {
    for (const [name, u] of [["feedUrl", this.opt.feedUrl], ["streamUrl", this.opt.streamUrl]] as const) {
      if (u === undefined || (name === "streamUrl" && u === "")) continue;
      let ok = false;
      try {
        const p = new URL(u);
        ok = p.protocol === "http:" || p.protocol === "https:";
      } catch {}
      if (!ok) throw new Error(`keycard: ${name} must be an http or https URL`);
    }
    let err: Error | undefined;
    try {
      await this.bootstrap();
    } catch (e) {
      err = this.failed(e);
    }
    this.loop = this.follow();
    this.pruneTimer = setInterval(() => this.set.prune(this.now()), PRUNE_INTERVAL_MS);
    this.pruneTimer.unref();
    return err;
  }

  /** close stops the follower; from then on it is stale. */
  async close(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    clearInterval(this.pruneTimer);
    await this.loop;
  }

  /**
   * healthy reports whether a verifier may rely on the set: bootstrapped,
   * not stopped, and in contact with the feed within maxOutage, or
   * failOpen (which never covers a set not loaded yet).
   */
  healthy(): boolean {
    if (!this.ready) return false;
    if (this.opt.failOpen) return true;
    return !this.stopped && this.lastContact !== 0 && this.now() - this.lastContact <= this.maxOutage;
  }

  status(): FollowerStatus {
    const stale = !this.ready || this.stopped || this.lastContact === 0 || this.now() - this.lastContact > this.maxOutage;
    return {
      ready: this.ready,
      mode: this.streaming ? MODE_STREAM : MODE_LONG_POLL,
      cursor: this.cursor,
      lastContact: this.lastContact || undefined,
      stale,
      reconnects: this.reconnects,
      entries: this.set.size,
      skipped: this.set.skipped,
      lastError: this.lastError,
    };
  }

  private contact(): void {
    this.lastContact = this.now();
  }

  private failed(e: unknown): Error {
    const err = e instanceof Error ? e : new Error(String(e));
    this.lastError = err.message;
    if (err instanceof StatusError && (err.status === 401 || err.status === 403)) {
      this.opt.logger?.warn("keycard: the revocation feed refused the client credentials; check the client id and secret", { client_id: this.opt.clientId, status: err.status });
    } else {
      this.opt.logger?.warn("keycard: revocation feed", { err: err.message });
    }
    return err;
  }

  private keysRevoked(kids: string[]): void {
    for (const kid of kids) {
      this.opt.logger?.warn("keycard: revocation feed: signing key revoked", { kid });
      this.opt.onKeyRevoked?.(kid);
    }
  }

  private async follow(): Promise<void> {
    let failures = 0;
    let streamAt = 0;
    const signal = this.abort.signal;
    while (!signal.aborted) {
      let progress = false;
      let err: unknown;
      try {
        if (!this.ready) {
          await this.bootstrap();
          progress = true;
        } else if (this.opt.streamUrl && this.now() >= streamAt) {
          this.streaming = true;
          const r = await this.stream();
          progress = r.progress;
          err = r.err;
          if (signal.aborted) return;
          if (err instanceof Malformed) progress = false;
          if (progress) failures = 0;
          else if (!(err instanceof StatusError && (err.status === 401 || err.status === 403))) failures++;
          if (err instanceof StreamUnavailable || failures >= STREAM_ATTEMPTS) {
            this.lastError = String((err as Error)?.message ?? err);
            this.opt.logger?.warn("keycard: revocation stream unavailable; following the feed by long-poll", { reason: this.lastError });
            this.streaming = false;
            streamAt = this.now() + STREAM_RETRY_AFTER_MS;
            failures = 0;
            this.reconnects++;
            continue;
          }
        } else {
          this.streaming = false;
          progress = await this.poll();
        }
      } catch (e) {
        err = e;
      }
      if (signal.aborted) return;
      if (progress) this.backoff = 0;
      if (err === undefined) continue;
      this.failed(err);
      this.reconnects++;
      this.backoff = this.backoff === 0 ? BACKOFF_MIN_MS : Math.min(2 * this.backoff, BACKOFF_MAX_MS);
      const half = this.backoff / 2;
      await sleep(half + Math.random() * half, signal);
    }
  }

  private async bootstrap(): Promise<void> {
    const first = await this.fetchPage(0, 0);
    const { entries, next } = await this.rest(first);
    this.set.reset(entries);
    this.cursor = next;
    this.ready = true;
    this.contact();
    this.opt.logger?.info("keycard: revocation feed bootstrapped", { entries: entries.length, cursor: next });
  }

  private async rest(first: FeedPage): Promise<{ entries: Entry[]; next: number }> {
    let entries = first.entries.slice();
    let next = first.next;
    let full = first.entries.length >= FEED_PAGE_SIZE;
    while (full) {
      const p = await this.fetchPage(next, 0);
      if (p.snapshot) entries = [];
      entries.push(...p.entries);
      next = p.next;
      full = p.entries.length >= FEED_PAGE_SIZE;
    }
    return { entries, next };
  }

  private async poll(): Promise<boolean> {
    const p = await this.fetchPage(this.cursor, this.opt.pollWaitSeconds ?? LONG_POLL_WAIT_S);
    this.contact();
    if (p.snapshot) {
      const { entries, next } = await this.rest(p);
      this.keysRevoked(this.set.reset(entries));
      this.cursor = next;
      return true;
    }
    const fresh: string[] = [];
    for (const e of p.entries) if (this.set.apply(e)) fresh.push(e.value);
    this.keysRevoked(fresh);
    this.cursor = p.next;
    return true;
  }

  /** fetchPage reads the page after the cursor, waiting up to wait seconds, and checks that it is in order. */
  private async fetchPage(after: number, wait: number): Promise<FeedPage> {
    const u = new URL(this.opt.feedUrl);
    u.search = "";
    u.searchParams.set("after", String(after));
    if (wait > 0) u.searchParams.set("wait", `${wait}s`);
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(wait * 1000 + REQUEST_TIMEOUT_MS)]);
    const res = await fetch(u, { headers: { Accept: "application/json", Authorization: this.auth }, signal, redirect: "error" });
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new StatusError(this.opt.feedUrl, res.status);
    }
    if (!isJSON(res.headers.get("content-type") ?? "")) {
      await res.body?.cancel();
      throw new Error("keycard: revocation feed page is not JSON");
    }
    const text = await readLimited(res, MAX_PAGE_BYTES, this.opt.feedUrl);
    let p: FeedPage;
    try {
      p = JSON.parse(text) as FeedPage;
    } catch {
      throw new Error("keycard: malformed revocation feed page");
    }
    if (p === null || typeof p !== "object" || !Array.isArray(p.entries) || !Number.isSafeInteger(p.next)) {
      throw new Error("keycard: malformed revocation feed page");
    }
    let last = p.snapshot ? 0 : after;
    for (const e of p.entries) {
      if (e === null || typeof e !== "object" || !Number.isSafeInteger(e.seq) || e.seq <= last) {
        throw new Error(`keycard: revocation feed page out of order after ${last}`);
      }
      last = e.seq;
    }
    if (p.next < last) throw new Error(`keycard: revocation feed page: next ${p.next} before seq ${last}`);
    p.snapshot = p.snapshot === true;
    return p;
  }

  /** stream follows the event stream from the cursor until it ends; it always ends with why. */
  private async stream(): Promise<{ progress: boolean; err: unknown }> {
    const ac = new AbortController();
    const onAbort = () => ac.abort();
    this.abort.signal.addEventListener("abort", onAbort);
    const idleMs = this.opt.streamIdleMs ?? STREAM_IDLE_MS;
    let idleFired = false;
    let idle = setTimeout(() => ((idleFired = true), ac.abort()), idleMs);
    const touch = () => idle.refresh();
    let progress = false;
    try {
      const res = await fetch(this.opt.streamUrl!, {
        headers: { Accept: "text/event-stream", "Cache-Control": "no-cache", "Last-Event-ID": String(this.cursor), Authorization: this.auth },
        signal: ac.signal,
        redirect: "error",
      });
      if (res.status !== 200) {
        await res.body?.cancel();
        if ([404, 405, 406, 410, 501].includes(res.status)) return { progress, err: new StreamUnavailable(`keycard: revocation stream unavailable: HTTP ${res.status}`) };
        return { progress, err: new StatusError(this.opt.streamUrl!, res.status) };
      }
      const ct = (res.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
      if (ct !== "text/event-stream") {
        await res.body?.cancel();
        return { progress, err: new StreamUnavailable(`keycard: revocation stream unavailable: Content-Type ${JSON.stringify(ct)}`) };
      }
      let snap: { next: number; entries: Entry[] } | undefined;
      for await (const ev of sseEvents(res.body as AsyncIterable<Uint8Array>, touch)) {
        if (ev.comment) {
          // a heartbeat
        } else if (ev.event === "revocation") {
          let e: Entry;
          try {
            e = JSON.parse(ev.data) as Entry;
          } catch {
            return { progress, err: new Malformed("keycard: malformed revocation event") };
          }
          if (e === null || typeof e !== "object" || !Number.isSafeInteger(e.seq) || e.seq <= 0 || (ev.id !== undefined && ev.id !== String(e.seq))) {
            return { progress, err: new Malformed("keycard: malformed revocation event") };
          }
          if (snap !== undefined) {
            const n = snap.entries.length;
            if (n > 0 && e.seq <= snap.entries[n - 1]!.seq) return { progress, err: new Malformed("keycard: revocation stream out of order") };
            snap.entries.push(e);
            if (e.seq >= snap.next) {
              this.keysRevoked(this.set.reset(snap.entries));
              this.cursor = e.seq;
              snap = undefined;
            }
          } else if (e.seq > this.cursor) {
            if (this.set.apply(e)) this.keysRevoked([e.value]);
            this.cursor = e.seq;
          }
        } else if (ev.event === "snapshot") {
          let next: unknown;
          try {
            next = (JSON.parse(ev.data) as { next?: unknown }).next;
          } catch {}
          if (!Number.isSafeInteger(next) || (next as number) < 0) return { progress, err: new Malformed("keycard: malformed snapshot event") };
          if (ev.id !== undefined) {
            this.set.reset([]); // no entries follow: the feed is empty
            this.cursor = next as number;
            snap = undefined;
          } else {
            snap = { next: next as number, entries: [] };
          }
        }
        progress = true;
        this.contact();
      }
      return { progress, err: new Error("keycard: revocation stream ended") };
    } catch (e) {
      if (idleFired) return { progress, err: new Error("keycard: revocation stream silent for too long") };
      return { progress, err: e };
    } finally {
      clearTimeout(idle);
      this.abort.signal.removeEventListener("abort", onAbort);
      ac.abort();
    }
  }
}

interface SSEEvent {
  comment: boolean;
  event: string;
  data: string;
  id: string | undefined;
}

/**
 * sseEvents parses an event stream (HTML Living Standard, "Interpreting
 * an event stream"): lines end with LF, CRLF or CR; a comment line
 * between events is yielded (heartbeats); events without data are not
 * dispatched; lines over 64 KiB and events over 64 KiB end the stream with
 * an error. onLine is called for every line read.
 */
export async function* sseEvents(body: AsyncIterable<Uint8Array>, onLine: () => void): AsyncGenerator<SSEEvent> {
  const dec = new TextDecoder("utf-8");
  let buf = "";
  let skipLF = false;
  let started = false;
  let ev: SSEEvent = { comment: false, event: "", data: "", id: undefined };
  let hasData = false;
  let some = false;
  let size = 0;
  for await (const chunk of body) {
    buf += dec.decode(chunk, { stream: true });
    if (!started && buf.length > 0) {
      started = true;
      if (buf.charCodeAt(0) === 0xfeff) buf = buf.slice(1);
    }
    let i = 0;
    for (;;) {
      if (skipLF && i < buf.length) {
        skipLF = false;
        if (buf[i] === "\n") i++;
      }
      let j = i;
      while (j < buf.length && buf[j] !== "\n" && buf[j] !== "\r") j++;
      if (j === buf.length) break;
      const line = buf.slice(i, j);
      if (buf[j] === "\r") skipLF = true;
      i = j + 1;
      if (line.length > MAX_SSE_LINE) throw new Malformed("keycard: event stream line too long");
      onLine();
      if (line === "") {
        if (hasData) {
          yield { ...ev, data: ev.data.slice(0, -1) };
        }
        ev = { comment: false, event: "", data: "", id: undefined };
        hasData = false;
        some = false;
        size = 0;
        continue;
      }
      if (line[0] === ":") {
        if (!some) yield { comment: true, event: "", data: "", id: undefined };
        continue;
      }
      some = true;
      size += line.length;
      if (size > MAX_SSE_EVENT) throw new Malformed("keycard: event stream event too large");
      const c = line.indexOf(":");
      const field = c < 0 ? line : line.slice(0, c);
      let value = c < 0 ? "" : line.slice(c + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") ev.event = value;
      else if (field === "data") {
        ev.data += value + "\n";
        hasData = true;
      } else if (field === "id" && !value.includes("\0")) ev.id = value;
    }
    buf = buf.slice(i);
    if (buf.length > MAX_SSE_LINE) throw new Malformed("keycard: event stream line too long");
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done);
  });
}
