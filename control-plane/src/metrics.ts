/**
 * Every Prometheus metric the control plane exports, declared once on its own registry
 * (so tests that start several control planes in one process do not collide).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The control plane's metrics; one instance per running control plane. */
export function createMetrics() {
  const registry = new Registry();
  // Unprefixed, as Node dashboards and alerts expect them (process_cpu_seconds_total, ...);
  // the *_total gauges promtool flags are left out, as in the proxy.
  collectDefaultMetrics({ register: registry });
  for (const kind of ['handles', 'requests', 'resources'])
    registry.removeSingleMetric(`nodejs_active_${kind}_total`);
  return {
    registry,
    apiLatency: new Histogram({
      name: 'lanekeeper_cp_api_request_duration_seconds',
      help: 'Admin and config API latency by method, route pattern and status',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    ledgerLag: new Gauge({
      name: 'lanekeeper_cp_ledger_lag_entries',
      help: 'Usage stream entries not yet delivered to the ledger consumer group',
      registers: [registry],
    }),
    ledgerPending: new Gauge({
      name: 'lanekeeper_cp_ledger_pending_entries',
      help: 'Usage stream entries delivered but not yet acknowledged (booked) by the ledger',
      registers: [registry],
    }),
    ledgerRows: new Counter({
      name: 'lanekeeper_cp_ledger_rows_total',
      help: 'Usage events processed by the ledger, by outcome (inserted, duplicate, rejected, erased_tenant)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    consumerErrors: new Counter({
      name: 'lanekeeper_cp_ledger_consumer_errors_total',
      help: 'Ledger consumer batches that failed and will be retried',
      registers: [registry],
    }),
    configPublishFailures: new Counter({
      name: 'lanekeeper_cp_config_publish_failures_total',
      help: 'Config change announcements that could not be published (proxies fall back to polling)',
      registers: [registry],
    }),
    erasures: new Counter({
      name: 'lanekeeper_cp_erasures_total',
      help: 'Tenant erasures by result (completed, failed)',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
