/**
 * The admin listener, never on the traffic port: Prometheus metrics, liveness, readiness
 * and the current hour's usage of a tenant.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Metrics } from './metrics.js';
import type { Runtime } from './runtime.js';
import type { Store } from './store/store.js';

export interface AdminDeps {
  metrics: Metrics;
  store: Store;
  getRuntime(): Runtime;
  /** False while starting or draining: /readyz then answers 503 so traffic moves elsewhere. */
  accepting(): boolean;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function createAdminHandler(deps: AdminDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const path = new URL(req.url ?? '/', 'http://admin.invalid').pathname;
    void (async () => {
      if (req.method !== 'GET' && req.method !== 'HEAD')
        return json(res, 405, { error: 'method not allowed' });
      if (path === '/metrics') {
        const text = await deps.metrics.registry.metrics();
        res.writeHead(200, { 'content-type': deps.metrics.registry.contentType });
        return res.end(text);
      }
      if (path === '/healthz') return json(res, 200, { status: 'ok' });
      if (path === '/readyz') {
        const storeUp = await deps.store.healthy().catch(() => false);
        deps.metrics.storeUp.set({ store: deps.store.kind }, storeUp ? 1 : 0);
        const failClosed = deps.getRuntime().config.on_store_error === 'fail_closed';
        const ready = deps.accepting() && (storeUp || !failClosed);
        return json(res, ready ? 200 : 503, {
          status: ready ? 'ready' : 'not ready',
          accepting: deps.accepting(),
          store: { kind: deps.store.kind, up: storeUp },
        });
      }
      const usage = /^\/v1\/usage\/([^/]+)$/.exec(path);
      if (usage) {
        const tenant = decodeURIComponent(usage[1] ?? '');
        if (!deps.getRuntime().tenants.has(tenant))
          return json(res, 404, { error: `unknown tenant "${tenant}"` });
        const hour = await deps.store.currentHour(tenant, Date.now());
        return json(res, 200, hour);
      }
      return json(res, 404, { error: 'not found' });
    })().catch((error: unknown) => json(res, 500, { error: (error as Error).message }));
  };
}
