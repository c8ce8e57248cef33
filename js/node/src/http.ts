// Small helpers for the HTTP requests the verifier makes.

/** GET url and return its body, which must come with status 200, a JSON media type and at most limit bytes. */
export async function getJSON(url: string, accept: string, limit: number, timeoutMs: number, headers: Record<string, string> = {}): Promise<{ body: string; headers: Headers }> {
  const res = await fetch(url, { headers: { Accept: accept, ...headers }, signal: AbortSignal.timeout(timeoutMs), redirect: "error" });
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new StatusError(url, res.status);
  }
  const ct = res.headers.get("content-type") ?? "";
  if (!isJSON(ct)) {
    await res.body?.cancel();
    throw new Error(`keycard: GET ${url}: Content-Type ${JSON.stringify(ct)} is not JSON`);
  }
  const body = await readLimited(res, limit, url);
  return { body, headers: res.headers };
}

/** readLimited reads a response body of at most limit bytes. */
export async function readLimited(res: Response, limit: number, url: string): Promise<string> {
  const len = Number(res.headers.get("content-length") ?? "-1");
  if (len > limit) {
    await res.body?.cancel();
    throw new Error(`keycard: GET ${url}: response of ${len} bytes exceeds the limit of ${limit}`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (res.body) {
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      size += chunk.byteLength;
      if (size > limit) throw new Error(`keycard: GET ${url}: response exceeds the limit of ${limit} bytes`);
      chunks.push(chunk);
    }
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** A response with a status other than 200. */
export class StatusError extends Error {
  constructor(readonly url: string, readonly status: number) {
    super(`keycard: GET ${url}: HTTP status ${status}, want 200`);
  }
}

/** isJSON reports whether a Content-Type is application/json or another +json type. */
export function isJSON(contentType: string): boolean {
  const mt = contentType.split(";")[0]!.trim().toLowerCase();
  return mt === "application/json" || (mt.startsWith("application/") && mt.endsWith("+json"));
}

/** jitter shortens ms by up to a tenth at random, so that verifiers started together do not refresh in step. */
export function jitter(ms: number): number {
  return ms - Math.random() * (ms / 10);
}
