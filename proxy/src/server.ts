/**
 * The only place that touches sockets: the node:http listener for tenant traffic. Each
 * request becomes a RequestContext (server/new-context.ts) and an Exchange
 * (server/exchange.ts), which runs the pipeline and the upstream call; the modules under
 * server/ hold the seams: the request target, the body reader, the upstream's response head.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { InternalProxyError, renderError } from './errors.js';
import {
  DIALECT_PATH_PREFIXES,
  errorStyleOf,
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
