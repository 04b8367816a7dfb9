/**
 * The admin listener, never on the traffic port: Prometheus metrics, liveness, readiness
 * and the current hour's usage of a tenant. Usage needs `admin_token`; /metrics needs
 * `metrics_token` when one is set (and one is required off loopback unless the operator
 * says `metrics_public: true`). Probes stay open, since kubelets send no token.
 */
import { hash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HEADER_WWW_AUTHENTICATE } from './headers.js';
import type { Metrics } from './metrics.js';
import { OPENMETRICS_CONTENT_TYPE, openMetricsText, wantsOpenMetrics } from './openmetrics.js';
import type { Runtime } from './runtime.js';
import type { Store } from './store/store.js';

export interface AdminDeps {
  metrics: Metrics;
  store: Store;
  getRuntime(): Runtime;
  /** False while starting or draining: /readyz then answers 503 so traffic moves elsewhere. */
  accepting(): boolean;
}

const CHALLENGE = 'Bearer realm="lanekeeper-admin"';

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/**
 * Whether the request's bearer token is `expected`. Both sides are hashed first, so the
 * comparison takes the same time whatever the token's length or content.
 */
export function bearerMatches(req: IncomingMessage, expected: string): boolean {
  const header = req.headers.authorization;
  if (typeof header !== 'string') return false;
  const match = /^Bearer ([^\s]+)$/i.exec(header);
  if (!match?.[1]) return false;
  return timingSafeEqual(hash('sha256', match[1], 'buffer'), hash('sha256', expected, 'buffer'));
}

function refuse(res: ServerResponse, message: string): void {
  json(res, 401, { error: message }, { [HEADER_WWW_AUTHENTICATE]: CHALLENGE });
}

export function createAdminHandler(deps: AdminDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const path = URL.parse(req.url ?? '/', 'http://admin.invalid')?.pathname ?? '';
    void (async () => {
      if (req.method !== 'GET' && req.method !== 'HEAD')
        return json(res, 405, { error: 'method not allowed' }, { allow: 'GET, HEAD' });
      const config = deps.getRuntime().config;
      if (path === '/metrics') {
        if (config.metrics_token !== undefined && !bearerMatches(req, config.metrics_token))
          return refuse(res, 'send the metrics_token as "Authorization: Bearer <token>"');
        if (wantsOpenMetrics(req.headers.accept)) {
          const text = await openMetricsText(deps.metrics.registry);
          res.writeHead(200, { 'content-type': OPENMETRICS_CONTENT_TYPE });
          return res.end(text);
        }
        const text = await deps.metrics.registry.metrics();
        res.writeHead(200, { 'content-type': deps.metrics.registry.contentType });
        return res.end(text);
      }
      if (path === '/healthz') return json(res, 200, { status: 'ok' });
      if (path === '/readyz') {
        const storeUp = await deps.store.healthy().catch(() => false);
        deps.metrics.storeUp.set({ store: deps.store.kind }, storeUp ? 1 : 0);
        const failClosed = config.on_store_error === 'fail_closed';
        const ready = deps.accepting() && (storeUp || !failClosed);
        return json(res, ready ? 200 : 503, {
          status: ready ? 'ready' : 'not ready',
          accepting: deps.accepting(),
          store: { kind: deps.store.kind, up: storeUp },
        });
      }
      const usage = /^\/v1\/usage\/([^/]+)$/.exec(path);
      if (usage) {
        if (config.admin_token === undefined)
          return refuse(
            res,
            'no admin_token is configured, so usage is not served: set admin_token in the config (for example admin_token: "${LANEKEEPER_ADMIN_TOKEN}") and send it as "Authorization: Bearer <token>"',
          );
        if (!bearerMatches(req, config.admin_token))
          return refuse(res, 'send the admin_token as "Authorization: Bearer <token>"');
        let tenant: string;
        try {
          tenant = decodeURIComponent(usage[1] ?? '');
        } catch {
          return json(res, 400, { error: 'the tenant id is not valid percent-encoding' });
        }
        if (!deps.getRuntime().tenants.has(tenant))
          return json(res, 404, { error: `unknown tenant "${tenant.slice(0, 64)}"` });
        const hour = await deps.store.currentHour(tenant, Date.now());
        return json(res, 200, hour);
      }
      return json(res, 404, { error: 'not found' });
    })().catch(() => {
      if (!res.headersSent) json(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  };
}
