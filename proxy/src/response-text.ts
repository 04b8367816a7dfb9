/**
 * The body of a fetch() answer as text, read only up to a limit: a peer that answers with
 * more (a hostile or broken control plane, JWKS endpoint) cannot make the proxy hold it.
 */

/** The body as UTF-8, or `tooBig()` thrown once it (or its declared length) passes `max` bytes. */
export async function textUpTo(response: Response, max: number, tooBig: () => Error): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (declared > max) {
    await response.body?.cancel();
    throw tooBig();
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body ?? []) {
    size += chunk.byteLength;
    if (size > max) {
      await response.body?.cancel().catch(() => undefined);
      throw tooBig();
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
