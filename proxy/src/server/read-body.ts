/**
 * Reading a request body with the listener's limits: a size cap (past which the rest is
 * discarded so the client still gets the 413), an idle timeout, and a hang-up that is an
 * ordinary event rather than a failure.
 */
import type { IncomingMessage } from 'node:http';

const EMPTY = Buffer.alloc(0);
/** Past this many bytes of an over-limit body, stop reading and close the connection. */
const DISCARD_LIMIT = 64 * 1024 * 1024;

/** How reading a request body ended. */
export type BodyRead =
  | { readonly kind: 'read'; readonly body: Buffer; readonly tooLarge: boolean }
  /** The client closed or reset the connection before the body was complete. */
  | { readonly kind: 'aborted' }
  /** The client went silent for longer than server.body_idle_timeout_ms mid-body. */
  | { readonly kind: 'idle' };

/**
 * Reads the request body up to `limit` bytes; past it, reads on (discarding) so the client
 * gets our 413. A client that hangs up or goes quiet mid-upload is an ordinary event, not a
 * proxy failure: it resolves, so nothing logs it as an error.
 */
export function readBody(req: IncomingMessage, limit: number, idleMs: number): Promise<BodyRead> {
  return new Promise((resolve) => {
    // Not `complete`: that is the parser's end, and the body may still wait in the stream's
    // buffer (read after a hook that awaited, such as a JWT's check).
    if (req.readableEnded) return resolve({ kind: 'read', body: EMPTY, tooLarge: false });
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    const idle = setTimeout(onIdle, idleMs);
    function onIdle(): void {
      done({ kind: 'idle' });
    }
    function done(result: BodyRead): void {
      clearTimeout(idle);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAbort);
      req.off('aborted', onAbort);
      resolve(result);
    }
    function onData(chunk: Buffer): void {
      idle.refresh();
      size += chunk.length;
      if (size > limit) {
        tooLarge = true;
        chunks.length = 0;
        if (size > DISCARD_LIMIT) {
          req.socket.destroySoon();
          done({ kind: 'read', body: EMPTY, tooLarge });
        }
        return;
      }
      chunks.push(chunk);
    }
    function onEnd(): void {
      done({ kind: 'read', body: tooLarge ? EMPTY : Buffer.concat(chunks, size), tooLarge });
    }
    function onAbort(): void {
      done({ kind: 'aborted' });
    }
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onAbort);
    req.on('aborted', onAbort);
  });
}
