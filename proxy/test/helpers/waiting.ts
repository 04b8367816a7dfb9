/**
 * Small things every process-level test needs: a free loopback port for a server the test
 * starts itself, an upstream that refuses every connection, and a bounded wait for
 * something to become true.
 */
import { once } from 'node:events';
import { createServer } from 'node:net';

/**
 * An upstream that refuses every connection: port 1 on loopback, which nothing here listens
 * on and no test can be handed. A port from `freePort` is only free until another test,
 * running in parallel, is given the same one for its own server: a test of an unreachable
 * upstream then got that server's 200 instead of a 502 (once, in CI).
 */
export const REFUSING_UPSTREAM = 'http://127.0.0.1:1';

/** A loopback port nothing listens on right now (the kernel's pick, released for the caller). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Polls `probe` until it yields a value (errors count as "not yet"), failing after `timeoutMs`. */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 30_000,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
