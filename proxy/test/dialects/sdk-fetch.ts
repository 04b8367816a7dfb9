/**
 * A `fetch` for the official SDKs that answers every call with the given SSE bytes, so
 * tests can check that what the proxy writes into a stream (cut-off events, streams with
 * injected usage hidden) is read correctly by the clients people really use.
 */

/** Records the JSON bodies the SDK sent, and answers with `body` as an event stream. */
export function sseFetch(body: Buffer | string): { fetch: typeof fetch; requests: unknown[] } {
  const requests: unknown[] = [];
  const fn = async (_url: unknown, init?: { body?: unknown }) => {
    if (typeof init?.body === 'string') requests.push(JSON.parse(init.body));
    return new Response(typeof body === 'string' ? body : new Uint8Array(body), {
      status: 200,
      headers: { 'content-type': 'text/event-stream' },
    });
  };
  return { fetch: fn as unknown as typeof fetch, requests };
}
