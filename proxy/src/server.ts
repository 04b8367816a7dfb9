/**
 * The only place that touches sockets: the node:http listener for tenant traffic. Each
 * request becomes a RequestContext (server/new-context.ts) and an Exchange
 * (server/exchange.ts), which runs the pipeline and the upstream call; the modules under
 * server/ hold the seams: the request target, the body reader, the upstream's response head.
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  HeadersTooLargeError,
  InternalProxyError,
  InvalidRequestError,
  RequestTimeoutError,
  renderError,
  type ProxyError,
} from './errors.js';
import {
  DIALECT_PATH_PREFIXES,
  errorStyleOf,
  errorStyleOfPath,
  Exchange,
  logFieldsOf,
  type ProxyHandlerDeps,
} from './server/exchange.js';
import { newContext } from './server/new-context.js';
import { splitTarget } from './server/target.js';

export type { ProxyHandlerDeps } from './server/exchange.js';
export { splitTarget } from './server/target.js';

/** The node:http request listener for tenant traffic. */
export function createProxyHandler(
  deps: ProxyHandlerDeps,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const target = splitTarget(req.url ?? '/');
    const bad = hostProblem(req) ?? ('error' in target ? target.error : undefined);
    // An unreadable target keeps only a known dialect prefix, for its error's shape.
    const ctx = newContext(
      req,
      deps.getRuntime(),
      'error' in target ? { path: dialectPrefixOf(req.url ?? '/'), query: '' } : target,
    );
    const exchange = new Exchange(ctx, res, deps, bad);
    exchange.run(req).catch((error: unknown) => {
      deps.logger.error({ ...logFieldsOf(ctx), err: error }, 'request failed inside the proxy');
      let owed = !res.headersSent;
      try {
        owed = exchange.abandon() && !res.headersSent;
      } catch (hookError) {
        deps.logger.error({ ...logFieldsOf(ctx), err: hookError }, 'could not end the failed request');
      }
      if (owed) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify(renderError(new InternalProxyError('Internal proxy error.'), errorStyleOf(ctx))),
        );
      } else {
        res.destroy();
      }
    });
  };
}

/**
 * Node's answer to a request it cannot parse (headers past 16 KiB, a malformed request
 * line, headers that took too long) was a bare status line with no body: the one refusal
 * that did not speak the client's API. The dialect comes from the path on the request line,
 * when the parser got that far.
 */
export function answerClientError(
  error: Error & { code?: string; rawPacket?: Buffer },
  socket: Duplex,
): void {
  // As node's own handler: nothing is written over a response already under way.
  const answering = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (!socket.writable || error.code === 'ECONNRESET' || answering?.headersSent) {
    socket.destroy();
    return;
  }
  let refusal: ProxyError;
  if (error.code === 'HPE_HEADER_OVERFLOW')
    refusal = new HeadersTooLargeError('The request headers are larger than this service accepts.');
  else if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT')
    refusal = new RequestTimeoutError('The request headers did not arrive in time.');
  else refusal = new InvalidRequestError('The request could not be read as HTTP/1.1.');
  const line = error.rawPacket?.subarray(0, 2048).toString('latin1').split('\r\n', 1)[0] ?? '';
  const path = line.split(' ')[1] ?? '/';
  const body = JSON.stringify(renderError(refusal, errorStyleOfPath(path)));
  socket.end(
    `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status]}\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/**
 * What makes the request's host ambiguous, which RFC 9112 §3.2 answers with a 400: two Host
 * headers (Node keeps the first, a server behind may read the last), or an absolute-form
 * target naming another host than Host. Subdomain identity reads Host, so either let a
 * request be one tenant here and another to anything that read the other value.
 */
function hostProblem(req: IncomingMessage): string | undefined {
  const raw = req.rawHeaders;
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') hosts++;
  }
  if (hosts > 1) return 'The request has more than one Host header.';
  const url = req.url ?? '/';
  if (url.startsWith('/') || url === '*') return undefined;
  // Host names only, as subdomain identity reads them: ports differ by scheme defaults.
  const named = URL.parse(url)?.hostname;
  const host = req.headers.host;
  if (named === undefined || host === undefined) return undefined;
  if (named.toLowerCase() !== (URL.parse(`http://${host}`)?.hostname ?? host).toLowerCase())
    return 'The request target names another host than its Host header.';
  return undefined;
}

/** The dialect path prefix the raw target starts with (DIALECT_PATH_PREFIXES), else `/`. */
function dialectPrefixOf(url: string): string {
  return DIALECT_PATH_PREFIXES.find(([prefix]) => url.startsWith(prefix))?.[0] ?? '/';
}
