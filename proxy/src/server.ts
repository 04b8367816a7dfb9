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
    const bad = 'error' in target ? target.error : undefined;
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

/** The dialect path prefix the raw target starts with (DIALECT_PATH_PREFIXES), else `/`. */
function dialectPrefixOf(url: string): string {
  return DIALECT_PATH_PREFIXES.find(([prefix]) => url.startsWith(prefix))?.[0] ?? '/';
}
